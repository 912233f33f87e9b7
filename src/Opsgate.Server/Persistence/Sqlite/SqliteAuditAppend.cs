using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Opsgate.Server.Persistence.Sqlite;

/// <summary>
/// SQLite: the write turn is the chain's lock (one writer at a time, across processes by the immediate transaction), so
/// entries are chained within the transaction that records their change, nothing is staged. The newest entry and the
/// inserts go below Microsoft.Data.Sqlite, on statements the writer connection keeps prepared.
/// </summary>
internal sealed class SqliteAuditAppend : IAuditAppend
{
    /// <summary>The insert, its values bound by position (see <see cref="InsertAsync"/>).</summary>
    private const string InsertSql =
        """
        INSERT INTO audit_log (id, ts, actor, source_ip, action, resource_kind, namespace, resource_name, request_body,
            status, http_status, error_message, principal_id, auth_method, request_id, dry_run, job_id, cluster, prev_hash, hash)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
        """;

    private const string LastSql = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1";

    /// <summary>The text Microsoft.Data.Sqlite stores for a DateTime, so that timestamps written here compare with its parameters.</summary>
    private const string Timestamp = @"yyyy\-MM\-dd HH\:mm\:ss.FFFFFFF";

    public bool Stages => false;

    public Task StageLaterAsync(WriteScope write, IAuditRow entry) => throw new NotSupportedException("SQLite chains audit entries where they are written");

    public Task<bool> AnyStagedAsync(CancellationToken ct) => Task.FromResult(false);

    /// <summary>The newest entry's id and hash (none in an empty log); the write turn already is the lock.</summary>
    public Task<AuditHead<T>> HeadAsync<T>(WriteScope write, int maxStaged)
    {
        var connection = (SqliteWriterConnection)write.Connection;
        var statement = connection.NativeStatement(LastSql);
        try
        {
            var rc = raw.sqlite3_step(statement);
            if (rc == raw.SQLITE_DONE)
                return Task.FromResult(new AuditHead<T>([], null, null));
            if (rc != raw.SQLITE_ROW)
                SqliteException.ThrowExceptionForRC(rc, connection.Handle);
            return Task.FromResult(new AuditHead<T>([], raw.sqlite3_column_int64(statement, 0), raw.sqlite3_column_text(statement, 1).utf8_to_string()));
        }
        finally
        {
            raw.sqlite3_reset(statement);
        }
    }

    /// <summary>
    /// One statement for the batch, each entry's values bound by position. Through Microsoft.Data.Sqlite (or Dapper) every
    /// execution would look up its 20 parameters by name (a search of the statement's names for each), which cost more
    /// than the insert itself; the statement is prepared once per writer connection, not per batch.
    /// </summary>
    public Task InsertAsync(WriteScope write, IReadOnlyList<IAuditRow> batch)
    {
        var connection = (SqliteWriterConnection)write.Connection;
        var db = connection.Handle!;
        var statement = connection.NativeStatement(InsertSql);
        var n = 0; // the position of the value bound last
        try
        {
            foreach (var e in batch)
            {
                raw.sqlite3_reset(statement);
                n = 0;
                Bind(raw.sqlite3_bind_int64(statement, ++n, e.Id));
                Text(e.Ts.ToString(Timestamp, CultureInfo.InvariantCulture));
                foreach (var text in (ReadOnlySpan<string?>)[e.Actor, e.SourceIp, e.Action, e.ResourceKind, e.Namespace, e.ResourceName, e.RequestBody, e.Status])
                    Text(text);
                Bind(e.HttpStatus is { } status ? raw.sqlite3_bind_int64(statement, ++n, status) : raw.sqlite3_bind_null(statement, ++n));
                foreach (var text in (ReadOnlySpan<string?>)[e.ErrorMessage, e.PrincipalId, e.AuthMethod, e.RequestId])
                    Text(text);
                Bind(raw.sqlite3_bind_int64(statement, ++n, e.DryRun ? 1 : 0));
                foreach (var text in (ReadOnlySpan<string?>)[e.JobId, e.Cluster, e.PrevHash, e.Hash])
                    Text(text);
                Debug.Assert(n == raw.sqlite3_bind_parameter_count(statement), "every column of the insert is bound");
                var rc = raw.sqlite3_step(statement);
                if (rc != raw.SQLITE_DONE)
                    SqliteException.ThrowExceptionForRC(rc, db);
            }
        }
        finally
        {
            // Kept for the next batch without this one's values.
            raw.sqlite3_reset(statement);
            raw.sqlite3_clear_bindings(statement);
        }
        return Task.CompletedTask;

        void Text(string? value) => Bind(value is null ? raw.sqlite3_bind_null(statement, ++n) : raw.sqlite3_bind_text(statement, ++n, value));
        void Bind(int rc) => SqliteException.ThrowExceptionForRC(rc, db);
    }
}
