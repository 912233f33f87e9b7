using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Opsgate.Server.Persistence.Sqlite;

/// <summary>
/// The one SQLite connection this process writes through (writers take turns, see <see cref="WriteTurns"/>), keeping
/// every statement it has prepared. Microsoft.Data.Sqlite prepares a statement anew for each command, and parsing and
/// planning were a fifth of the server's CPU in the job engine's writes (the jobs benchmark); Dapper creates a
/// command per call, so the commands this connection hands out run the statement prepared for their text the first time.
/// Used by one writer at a time only, like any SQLite connection.
/// </summary>
internal sealed class SqliteWriterConnection(string connectionString) : SqliteConnection(connectionString)
{
    // Statements with a text of their own each time (a multi-row insert of N rows) are bounded by this many cached texts.
    private const int MaxCached = 256;
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);
    private readonly Dictionary<string, sqlite3_stmt> _native = new(StringComparer.Ordinal);

    // As SqliteConnection does: a new command joins the transaction under way (the driver runs ROLLBACK and COMMIT through here too).
    public override SqliteCommand CreateCommand() => new ReusingCommand(this) { Transaction = Transaction };

    /// <summary>The command prepared for <paramref name="text"/> (a new one, not kept, beyond <see cref="MaxCached"/> texts).</summary>
    private (SqliteCommand Command, bool Kept) Prepared(string text)
    {
        if (_prepared.TryGetValue(text, out var command))
            return (command, true);
        command = new SqliteCommand(text, this);
        if (_prepared.Count >= MaxCached)
            return (command, false);
        _prepared[text] = command;
        return (command, true);
    }

    /// <summary>
    /// The SQLite statement for <paramref name="sql"/> (a constant), prepared on first use and kept until the connection is
    /// closed, for callers that bind and step it below Microsoft.Data.Sqlite. The caller resets it when done, so it holds
    /// no read open and no bound values.
    /// </summary>
    public sqlite3_stmt NativeStatement(string sql)
    {
        if (_native.TryGetValue(sql, out var statement))
            return statement;
        SqliteException.ThrowExceptionForRC(raw.sqlite3_prepare_v2(Handle, sql, out statement), Handle);
        _native[sql] = statement;
        return statement;
    }

    public override void Close()
    {
        // Finalized before the handle goes back to the pool (Dispose closes too).
        foreach (var statement in _native.Values)
            statement.Dispose();
        _native.Clear();
        base.Close();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var command in _prepared.Values)
                command.Dispose();
            _prepared.Clear();
        }
        base.Dispose(disposing);
    }

    /// <summary>A command that runs on the statement its connection keeps for its text.</summary>
    private sealed class ReusingCommand(SqliteWriterConnection owner) : SqliteCommand
    {
        private SqliteCommand? _inner;
        private bool _kept;

        private SqliteCommand Inner => _inner ?? throw new InvalidOperationException("CommandText must be set before the command is used");

        [AllowNull]
        public override string CommandText
        {
            get => _inner?.CommandText ?? "";
            set
            {
                // Dapper rewrites the text after adding parameters (list expansion, literals): they move to the new statement.
                var added = _inner is { Parameters.Count: > 0 } ? _inner.Parameters.Cast<SqliteParameter>().ToList() : null;
                Release();
                (_inner, _kept) = owner.Prepared(value ?? "");
                _inner.Parameters.Clear();
                if (added is not null)
                    _inner.Parameters.AddRange(added);
            }
        }

        public override SqliteParameterCollection Parameters => Inner.Parameters;

        protected override DbParameterCollection DbParameterCollection => Inner.Parameters;

        public override int CommandTimeout
        {
            get => _inner?.CommandTimeout ?? owner.DefaultTimeout;
            set => Inner.CommandTimeout = value;
        }

        private SqliteCommand Bound()
        {
            var inner = Inner;
            inner.Transaction = Transaction;
            return inner;
        }

        public override SqliteDataReader ExecuteReader(CommandBehavior behavior) => Bound().ExecuteReader(behavior);

        protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior) => Bound().ExecuteReader(behavior);

        protected override async Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken) =>
            await Bound().ExecuteReaderAsync(behavior, cancellationToken);

        public override int ExecuteNonQuery() => Bound().ExecuteNonQuery();

        public override object? ExecuteScalar() => Bound().ExecuteScalar();

        public override void Prepare()
        {
            // Prepared on first use and kept.
        }

        private void Release()
        {
            if (_inner is null)
                return;
            _inner.Parameters.Clear();
            _inner.Transaction = null;
            if (!_kept)
                _inner.Dispose();
            _inner = null;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                Release();
            base.Dispose(disposing);
        }
    }
}
