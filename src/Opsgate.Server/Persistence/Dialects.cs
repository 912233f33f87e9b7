using System.Data.Common;

namespace Opsgate.Server.Persistence;

// Where SQLite and PostgreSQL differ, the rest of the server talks to one of these interfaces; AddPersistence picks the
// implementation (Persistence/Sqlite or Persistence/Postgres) once, by Database:Provider. Nothing outside Persistence
// names a driver type or the dialect (Hosting/ArchitectureTests checks it). The interfaces speak in SQL text, Dapper rows
// and plain values, so Persistence depends on no feature: a feature hands its SQL and row types in.

/// <summary>
/// The statements a claim is built from, in SQL both databases run: the claimable rows of <see cref="Table"/> as two
/// searches (each <c>SELECT id, created_at ... ORDER BY created_at, id LIMIT @n</c> with <c>@now</c>), the condition under
/// which a row found by them is still claimable, the <c>SET</c> that claims it (<c>@owner</c>, <c>@now</c>, <c>@expires</c>),
/// the columns handed back, and the child rows read with each claimed row (its steps).
/// </summary>
internal sealed record ClaimQuery(string Table, string Pending, string Expired, string Claimable, string Set, string Columns,
    string ChildTable, string ChildColumns, string ChildKey, string ChildOrder);

/// <summary>What a claim took: the write it was taken in (not yet committed), and the rows, row i owned by owner i.</summary>
/// <param name="Write">Null when nothing was found to take (no write was begun).</param>
/// <param name="LookAgain">Rows were found but another process took them first: searching again may find others.</param>
internal sealed record Claimed<TRow, TChild>(WriteScope? Write, IReadOnlyList<(TRow Row, IReadOnlyList<TChild> Children)> Rows, bool LookAgain)
    : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Write?.DisposeAsync() ?? ValueTask.CompletedTask;
}

/// <summary>Takes the oldest claimable rows for a worker: SQLite's immediate write turn, PostgreSQL's <c>FOR UPDATE SKIP LOCKED</c>.</summary>
internal interface IJobClaims
{
    /// <summary>
    /// Takes up to <paramref name="owners"/>.Count rows in one write transaction of the engine, each set with
    /// <see cref="ClaimQuery.Set"/> for its owner, and reads their children after taking them, in that transaction. The
    /// caller records what goes with the claim in <see cref="Claimed{TRow, TChild}.Write"/>, commits it and disposes the result.
    /// </summary>
    /// <param name="now">The time, asked again once the write turn is had.</param>
    /// <param name="parentOf">The key of a child row (its row's id).</param>
    Task<Claimed<TRow, TChild>> ClaimAsync<TRow, TChild>(ClaimQuery query, IReadOnlyList<string> owners, TimeSpan lease, Func<DateTime> now,
        Func<TRow, string> idOf, Func<TChild, string> parentOf, CancellationToken ct);
}

/// <summary>One job event as <see cref="IEventAppend"/> stores it.</summary>
internal interface IEventRow
{
    string Type { get; }
    int? StepOrder { get; }
    /// <summary>The data as JSON text, or null.</summary>
    string? DataJson { get; }
}

/// <summary>Inserts a batch of job events (the hot path of a playbook run): PostgreSQL's binary COPY, multi-row INSERTs.</summary>
internal interface IEventAppend
{
    /// <param name="first">The seq of the first event; the others follow without gaps.</param>
    Task InsertAsync(DbConnection connection, DbTransaction tx, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct);

    /// <summary>As the other overload; where the database allows, a small batch is held for <paramref name="write"/>'s commit (<see cref="WriteScope.LaterAsync"/>).</summary>
    Task InsertAsync(WriteScope write, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct);
}

/// <summary>
/// Wakes idle workers of every process sharing the database when a job becomes claimable (PostgreSQL's NOTIFY and
/// LISTEN). On SQLite there is nothing to send: workers of this process are woken in memory, others poll.
/// </summary>
internal interface IJobWakeUps
{
    /// <summary>Sends the wake-up with <paramref name="tx"/>'s commit.</summary>
    Task NotifyAsync(DbConnection connection, DbTransaction tx, string jobId);

    /// <summary>As <see cref="NotifyAsync"/>, held for <paramref name="write"/>'s commit.</summary>
    Task NotifyLaterAsync(WriteScope write, string jobId);

    /// <summary>Calls <paramref name="woken"/> on every wake-up from any process until <paramref name="ct"/> is cancelled (at once when the database has none).</summary>
    Task ListenAsync(Action woken, CancellationToken ct);
}

/// <summary>One audit log row as <see cref="IAuditAppend"/> stores it.</summary>
internal interface IAuditRow
{
    long Id { get; }
    DateTime Ts { get; }
    string? Actor { get; }
    string? SourceIp { get; }
    string Action { get; }
    string? ResourceKind { get; }
    string? Namespace { get; }
    string? ResourceName { get; }
    string? RequestBody { get; }
    string Status { get; }
    int? HttpStatus { get; }
    string? ErrorMessage { get; }
    string? PrincipalId { get; }
    string? AuthMethod { get; }
    string? RequestId { get; }
    bool DryRun { get; }
    string? JobId { get; }
    string? Cluster { get; }
    string PrevHash { get; }
    string Hash { get; }
}

/// <summary>The chain's end as a batch finds it under the chain's lock: entries staged before, and the newest stored entry.</summary>
internal sealed record AuditHead<T>(IReadOnlyList<T> Staged, long? LastId, string? LastHash);

/// <summary>
/// The audit log's storage: the lock that keeps the hash chain linear across processes, the newest entry, the batch insert,
/// and (where transitions of many jobs commit at once) entries staged in the engine's transactions and chained later.
/// </summary>
internal interface IAuditAppend
{
    /// <summary>True: entries written within another transaction are staged (<see cref="StageLaterAsync"/>), not chained there.</summary>
    bool Stages { get; }

    /// <summary>Holds <paramref name="entry"/> for <paramref name="write"/>'s commit, into the staging table.</summary>
    Task StageLaterAsync(WriteScope write, IAuditRow entry);

    /// <summary>Whether entries wait in the staging table.</summary>
    Task<bool> AnyStagedAsync(CancellationToken ct);

    /// <summary>
    /// Takes the chain's lock until <paramref name="write"/> ends (on SQLite the write turn is the lock), moves up to
    /// <paramref name="maxStaged"/> staged entries (oldest first) out of the staging table, and reads the newest stored entry.
    /// </summary>
    Task<AuditHead<T>> HeadAsync<T>(WriteScope write, int maxStaged);

    /// <summary>Inserts chained entries in <paramref name="write"/>'s transaction (maybe held for its commit).</summary>
    Task InsertAsync(WriteScope write, IReadOnlyList<IAuditRow> batch);
}

/// <summary>SQL text that differs between the databases, for queries written once.</summary>
internal interface ISqlText
{
    /// <summary>Appended to a <c>SELECT</c> of one row that the transaction must hold until it ends (SQLite writers take turns already).</summary>
    string ForUpdate { get; }

    /// <summary><paramref name="column"/> is one of the array parameter <paramref name="parameter"/> (Dapper expands it on SQLite).</summary>
    string InList(string column, string parameter);

    /// <summary><paramref name="column"/> is none of the array parameter <paramref name="parameter"/>.</summary>
    string NotInList(string column, string parameter);

    /// <summary>True when JSON text <paramref name="column"/> has a string at top-level key <paramref name="key"/> (a constant identifier).</summary>
    string JsonIsString(string column, string key);

    /// <summary>The text at top-level key <paramref name="key"/> (a constant identifier) of JSON text <paramref name="column"/>.</summary>
    string JsonText(string column, string key);
}
