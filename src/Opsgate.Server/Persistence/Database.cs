using System.Data;
using System.Data.Common;
using System.Runtime.CompilerServices;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;
using Opsgate.Server.Hosting;
using Opsgate.Server.Persistence.Postgres;
using Opsgate.Server.Persistence.Sqlite;

namespace Opsgate.Server.Persistence;

internal enum DbDialect { Sqlite, Postgres }

/// <summary>
/// The one database Opsgate keeps its state in: SQLite (embedded default, WAL) or PostgreSQL.
/// Both dialects share one schema; where SQL differs, the rest of the server uses the interfaces in Dialects.cs, whose
/// implementations (Persistence/Sqlite, Persistence/Postgres) <see cref="PersistenceExtensions.AddPersistence"/> picks by <see cref="Dialect"/>.
/// </summary>
internal sealed class Database : IAsyncDisposable
{
    private readonly NpgsqlDataSource? _postgres;
    private readonly string? _sqlite;

    // SQLite lets one connection write at a time, and Microsoft.Data.Sqlite answers a busy database by blocking
    // the thread for 150 ms before it retries (it sets no busy_timeout). So writers in this process take turns
    // here, waiting asynchronously in arrival order, and never meet each other's lock; another process writing
    // the same file still gets the driver's retry. On PostgreSQL up to Database:PostgresWriters write at once: there
    // the turns only order who goes first (the job engine), so work already accepted runs before more is accepted.
    private readonly WriteTurns _writers;

    static Database()
    {
        // Columns are snake_case, C# properties PascalCase.
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    public Database(IOptions<DatabaseOptions> database, IOptions<OpsgateOptions> opsgate)
    {
        var options = database.Value;
        if (options.Provider.Equals("postgres", StringComparison.OrdinalIgnoreCase))
        {
            Dialect = DbDialect.Postgres;
            try
            {
                var connection = new NpgsqlConnectionStringBuilder(options.ConnectionString);
                // Opsgate runs the same few statements all the time: prepared on each pooled connection after their second
                // use, PostgreSQL stops parsing and planning them (bench/: 1.8 times the job throughput). A connection
                // string that sets Max Auto Prepare keeps its own value (0 turns it off, e.g. behind an old PgBouncer).
                var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = options.ConnectionString };
                if (!given.ContainsKey("Max Auto Prepare") && !given.ContainsKey("MaxAutoPrepare"))
                    (connection.MaxAutoPrepare, connection.AutoPrepareMinUsages) = (100, 2);
                // Opsgate leaves no session state on a pooled connection (no SET or temporary tables; the migrator releases
                // its session lock, the job listener its LISTEN), so the reset Npgsql sends with a reused connection's next
                // statement is pure cost: four statements every time a connection is taken (bench/: 11-15% of the job
                // throughput). A connection string that sets No Reset On Close keeps its own value.
                if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose"))
                    connection.NoResetOnClose = true;
                _postgres = NpgsqlDataSource.Create(connection.ConnectionString);
                _writers = new WriteTurns(options.PostgresWriters);
            }
            catch (ArgumentException e)
            {
                throw new StartupException($"configuration error: Database:ConnectionString is not a valid PostgreSQL connection string ({e.Message})");
            }
        }
        else
        {
            Dialect = DbDialect.Sqlite;
            string connectionString;
            if (string.IsNullOrWhiteSpace(options.ConnectionString))
            {
                var dataDir = Path.GetFullPath(opsgate.Value.DataDir);
                try
                {
                    Directory.CreateDirectory(dataDir);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new StartupException($"configuration error: DataDir '{dataDir}' cannot be used as a directory ({e.Message})", e);
                }
                connectionString = new SqliteConnectionStringBuilder
                {
                    DataSource = Path.Combine(dataDir, "opsgate.db"),
                    Pooling = true,
                    DefaultTimeout = 30,
                }.ToString();
            }
            else
            {
                connectionString = options.ConnectionString;
            }
            _sqlite = connectionString;
            _writers = new WriteTurns();
        }
    }

    public DbDialect Dialect { get; }

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (_postgres is not null)
            return await _postgres.OpenConnectionAsync(cancellationToken);

        return await OpenSqliteAsync(new SqliteConnection(_sqlite), cancellationToken);
    }

    private async Task<SqliteConnection> OpenSqliteAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            await connection.OpenAsync(cancellationToken);
            // WAL lets readers run beside the single writer; NORMAL sync is durable across process crashes in WAL mode.
            // journal_mode is persistent in the file, synchronous is per connection: both are set once per pooled
            // connection (its native handle), not on every open (two statements more on every read and write).
            if (!_configured.TryGetValue(connection.Handle!, out _))
            {
                await connection.ExecuteAsync("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
                _configured.AddOrUpdate(connection.Handle!, Configured);
            }
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>The connection SQLite writes go through, opened on first use (and again if it was closed by a failure); only ever used in a write turn.</summary>
    private async Task<SqliteWriterConnection> WriterAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Not in autocommit mode between turns means a rollback failed and left a transaction open: start afresh.
        if (_writer is { State: ConnectionState.Open } writer && SQLitePCL.raw.sqlite3_get_autocommit(writer.Handle) != 0)
            return writer;
        if (_writer is not null)
            await _writer.DisposeAsync();
        _writer = null;
        _writer = (SqliteWriterConnection)await OpenSqliteAsync(new SqliteWriterConnection(_sqlite!), cancellationToken);
        return _writer;
    }

    private bool _disposed;

    private SqliteWriterConnection? _writer;

    private static readonly object Configured = new();
    private readonly ConditionalWeakTable<SQLitePCL.sqlite3, object> _configured = new();

    /// <summary>
    /// Every write goes through here: waits for this process's turn to write (on SQLite writers take turns; on
    /// PostgreSQL, which has row locks, every caller gets one at once), opens a connection and begins the write
    /// transaction (BEGIN IMMEDIATE on SQLite). Disposing the scope rolls back what was not committed and lets
    /// the next writer in. Never open a second scope while holding one: on SQLite that waits forever.
    /// </summary>
    public Task<WriteScope> WriteAsync(CancellationToken cancellationToken = default) => WriteAsync(engine: false, cancellationToken);

    /// <param name="engine">A write of the job engine (claims, step and job transitions): on SQLite it goes before other
    /// waiting writers, so work already accepted starts and finishes before more is accepted (submits wait instead of
    /// the queue growing).</param>
    public async Task<WriteScope> WriteAsync(bool engine, CancellationToken cancellationToken)
    {
        await _writers.EnterAsync(engine, cancellationToken);
        try
        {
            if (_postgres is not null)
            {
                var connection = await _postgres.OpenConnectionAsync(cancellationToken);
                return new WriteScope(connection, BeginWrite(connection), _writers, ownsConnection: true);
            }
            var writer = await WriterAsync(cancellationToken);
            return new WriteScope(writer, BeginWrite(writer), _writers, ownsConnection: false);
        }
        catch
        {
            _writers.Exit();
            throw;
        }
    }

    /// <summary>Begins a write transaction on a connection the caller opened (start-up migrations, before any other writer exists).</summary>
    public static DbTransaction BeginWrite(DbConnection connection) =>
        connection is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : connection.BeginTransaction();

    /// <summary>
    /// A foreign key refused the write: on PostgreSQL a row it references was deleted by a transaction that committed
    /// meanwhile (SQLite writers take turns, so there it means the same, found earlier).
    /// </summary>
    public static bool IsForeignKeyViolation(Exception e) =>
        e is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation } or SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 787 };

    /// <summary>
    /// A unique constraint refused the write: on PostgreSQL another transaction committed the same key meanwhile (on SQLite,
    /// another process: writers of this one take turns).
    /// </summary>
    public static bool IsUniqueViolation(Exception e) =>
        e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } or SqliteException { SqliteErrorCode: 19 };

    /// <summary>Where the data lives, without credentials, for the start-up line and /health.</summary>
    public string Describe()
    {
        if (_postgres is not null)
        {
            var b = new NpgsqlConnectionStringBuilder(_postgres.ConnectionString);
            return $"postgres {b.Host}:{b.Port}/{b.Database}";
        }
        return $"sqlite {new SqliteConnectionStringBuilder(_sqlite).DataSource}";
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
            await _postgres.DisposeAsync();
        if (_postgres is not null)
            return;
        // The writer is closed in a turn of its own, so not under a write still running (a runner that outlived the
        // host's shutdown); after a while it is closed anyway.
        var turn = false;
        using (var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            try
            {
                await _writers.EnterAsync(engine: true, patience.Token);
                turn = true;
            }
            catch (OperationCanceledException)
            {
                // Closed anyway.
            }
        }
        _disposed = true;
        if (_writer is not null)
            await _writer.DisposeAsync();
        if (turn)
            _writers.Exit();
    }
}

/// <summary>
/// A write transaction and this process's turn to write, from <see cref="Database.WriteAsync"/>. On SQLite the connection is
/// the process's writer connection, kept open for the next turn; on PostgreSQL it is closed (back to the pool) with the scope
/// (<paramref name="ownsConnection"/>).
/// </summary>
internal sealed class WriteScope(DbConnection connection, DbTransaction transaction, WriteTurns writers, bool ownsConnection) : IAsyncDisposable
{
    private List<NpgsqlBatchCommand>? _later;

    public DbConnection Connection { get; } = connection;
    public DbTransaction Transaction { get; } = transaction;

    /// <summary>
    /// Runs a statement whose outcome the caller does not look at. On PostgreSQL it is held and sent with the others held
    /// in one round trip by <see cref="CommitAsync"/> (a job's transitions were some twenty round trips, and each cost
    /// both processes more than its statement); on SQLite, in this process, it runs at once. So nothing in the same
    /// transaction may read what it writes, and a scope that holds statements must commit through <see cref="CommitAsync"/>.
    /// </summary>
    public async Task LaterAsync(string sql, object? param)
    {
        if (Connection is not NpgsqlConnection)
        {
            await Connection.ExecuteAsync(sql, param, Transaction);
            return;
        }
        var command = new NpgsqlBatchCommand(sql);
        foreach (var (name, value) in StatementParameters.Of(sql, param))
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        Later(command);
    }

    /// <summary>As <see cref="LaterAsync"/>, for a PostgreSQL statement the caller built.</summary>
    public void Later(NpgsqlBatchCommand command) => (_later ??= []).Add(command);

    /// <summary>Sends the held statements (one round trip), then commits.</summary>
    public async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        if (_later is { Count: > 0 } later)
        {
            _later = null;
            await using var batch = new NpgsqlBatch((NpgsqlConnection)Connection, (NpgsqlTransaction)Transaction);
            foreach (var command in later)
                batch.BatchCommands.Add(command);
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        await Transaction.CommitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Transaction.DisposeAsync();
            if (ownsConnection)
                await Connection.DisposeAsync();
        }
        finally
        {
            writers.Exit();
        }
    }
}

/// <summary>
/// Turns to write, at most <paramref name="capacity"/> at a time, awaited asynchronously: first come, first served, except
/// that the job engine's writers go before the others that wait (but never more than <see cref="MaxEngineStreak"/> times in
/// a row while others wait).
/// </summary>
internal sealed class WriteTurns(int capacity = 1)
{
    private readonly Lock _lock = new();
    private readonly LinkedList<TaskCompletionSource> _engine = new();
    private readonly LinkedList<TaskCompletionSource> _others = new();
    private int _held;
    // Engine turns given in a row while others waited: after MaxEngineStreak, one of the others goes, so no writer
    // (a lease renewal, an API request's audit entry) waits for long behind a busy engine.
    private int _engineStreak;
    private const int MaxEngineStreak = 16;

    public async Task EnterAsync(bool engine, CancellationToken cancellationToken)
    {
        LinkedListNode<TaskCompletionSource> waiting;
        lock (_lock)
        {
            if (_held < capacity)
            {
                _held++;
                return;
            }
            waiting = (engine ? _engine : _others).AddLast(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        await using var cancel = cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                // Still waiting (not handed the turn): leave the line.
                if (waiting.List is not { } line)
                    return;
                line.Remove(waiting);
            }
            waiting.Value.TrySetCanceled(cancellationToken);
        });
        await waiting.Value.Task;
    }

    public void Exit()
    {
        TaskCompletionSource next;
        lock (_lock)
        {
            var line = _engine.Count > 0 && (_others.Count == 0 || _engineStreak < MaxEngineStreak) ? _engine : _others.Count > 0 ? _others : null;
            if (line is null)
            {
                _held--;
                return;
            }
            _engineStreak = line == _engine && _others.Count > 0 ? _engineStreak + 1 : 0;
            next = line.First!.Value;
            line.RemoveFirst();
        }
        next.TrySetResult();
    }
}

/// <summary>The parameters of a Dapper-style parameter object that a statement names (<c>@Name</c>), as Dapper would bind them.</summary>
internal static partial class StatementParameters
{
    // Per statement text and parameter type, the properties it names: found once, not on every call (the texts are constants).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Sql, Type Type), System.Reflection.PropertyInfo[]> Named = new();

    public static IEnumerable<(string Name, object? Value)> Of(string sql, object? param)
    {
        if (param is null)
            return [];
        var properties = Named.GetOrAdd((sql, param.GetType()), key =>
        {
            var names = Placeholder().Matches(key.Sql).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.OrdinalIgnoreCase);
            return key.Type.GetProperties().Where(p => names.Contains(p.Name)).ToArray();
        });
        return properties.Select(p => (p.Name, p.GetValue(param)));
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"@([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial System.Text.RegularExpressions.Regex Placeholder();
}

internal static class PersistenceExtensions
{
    public static void AddPersistence(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<Database>();
        builder.Services.AddSingleton<Migrator>();
        // Where the databases differ, the implementation is chosen here, once.
        Dialect<IJobClaims>(builder.Services, s => new SqliteJobClaims(s.GetRequiredService<Database>()), s => new PostgresJobClaims(s.GetRequiredService<Database>()));
        Dialect<IEventAppend>(builder.Services, _ => new SqliteEventAppend(), _ => new PostgresEventAppend());
        Dialect<IJobWakeUps>(builder.Services, _ => new SqliteWakeUps(),
            s => new PostgresWakeUps(s.GetRequiredService<Database>(), s.GetRequiredService<ILogger<PostgresWakeUps>>()));
        Dialect<IAuditAppend>(builder.Services, _ => new SqliteAuditAppend(), s => new PostgresAuditAppend(s.GetRequiredService<Database>()));
        Dialect<ISqlText>(builder.Services, _ => new SqliteSqlText(), _ => new PostgresSqlText());
    }

    private static void Dialect<T>(IServiceCollection services, Func<IServiceProvider, T> sqlite, Func<IServiceProvider, T> postgres) where T : class =>
        services.AddSingleton(s => s.GetRequiredService<Database>().Dialect == DbDialect.Postgres ? postgres(s) : sqlite(s));

    /// <summary>SQLite hands timestamps back without a kind; everything Opsgate stores is UTC.</summary>
    public static DateTime AsUtc(this DateTime value) => DateTime.SpecifyKind(value, DateTimeKind.Utc);

    public static DateTime? AsUtc(this DateTime? value) => value?.AsUtc();

    /// <summary>Timestamps are kept at microsecond precision, PostgreSQL's, so both dialects hand back what was stored.</summary>
    public static DateTime TruncateToMicroseconds(this DateTime value) =>
        new(value.Ticks - value.Ticks % 10, DateTimeKind.Utc);
}
