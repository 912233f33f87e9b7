using System.Threading.Channels;
using Dapper;
using Opsgate.Server.Observability;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Audit;

/// <summary>The audit log could not be written; the request that needed it must not report success.</summary>
internal sealed class AuditUnavailableException(Exception inner) : Exception("the audit log could not be written", inner);

/// <summary>
/// The single writer of the audit log. Requests enqueue entries and wait until their entry is committed
/// (so no response goes out before its audit entry is durable); the writer takes whatever is queued, up to
/// <see cref="MaxBatch"/>, and commits it in one transaction (group commit). Chaining happens inside that
/// transaction after reading the last stored hash, under a lock that also serializes other replicas
/// (PostgreSQL advisory transaction lock; SQLite's immediate transaction), so concurrent writers never
/// fork the chain.
/// </summary>
internal sealed partial class AuditWriter(Database database, TimeProvider time, OpsgateMetrics metrics, ILogger<AuditWriter> logger)
    : BackgroundService
{
    private const int MaxBatch = 512;
    private const long PostgresLockKey = 0x6f70_7367_6175_64; // "opsgaud"

    private const string InsertSql =
        """
        INSERT INTO audit_log (id, ts, actor, source_ip, action, resource_kind, namespace, resource_name, request_body,
            status, http_status, error_message, principal_id, auth_method, request_id, dry_run, job_id, cluster, prev_hash, hash)
        VALUES (@Id, @Ts, @Actor, @SourceIp, @Action, @ResourceKind, @Namespace, @ResourceName, @RequestBody,
            @Status, @HttpStatus, @ErrorMessage, @PrincipalId, @AuthMethod, @RequestId, @DryRun, @JobId, @Cluster, @PrevHash, @Hash)
        """;

    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(50_000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private sealed record Pending(AuditEntry Entry, TaskCompletionSource Committed);

    /// <summary>Completes once <paramref name="entry"/> is committed; throws <see cref="AuditUnavailableException"/> if it could not be.</summary>
    public async Task AppendAsync(AuditEntry entry)
    {
        MakeStorable(entry);
        var pending = new Pending(entry, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending))
            await _queue.Writer.WriteAsync(pending);
        await pending.Committed.Task;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Drain what is queued before stopping: entries already accepted must not be lost.
        _queue.Writer.TryComplete();
        if (ExecuteTask is not null)
            await ExecuteTask.WaitAsync(cancellationToken);
    }

    /// <summary>True while the writer loop runs (for /health).</summary>
    public bool IsRunning => ExecuteTask is { IsCompleted: false };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var pending))
                batch.Add(pending);
            try
            {
                await CommitAsync(batch);
                metrics.AuditEntriesWritten(batch.Count);
                foreach (var p in batch)
                    p.Committed.TrySetResult();
            }
            catch (Exception e)
            {
                LogWriteFailed(logger, batch.Count, e);
                foreach (var p in batch)
                    p.Committed.TrySetException(new AuditUnavailableException(e));
            }
            batch.Clear();
        }
    }

    /// <summary>
    /// Chains <paramref name="entries"/> into the log inside the caller's write transaction, so they commit (or roll
    /// back) with the change they record and need no round through the queue. Call <see cref="Committed"/> after the commit.
    /// </summary>
    public async Task AppendWithinAsync(WriteScope write, IReadOnlyList<AuditEntry> entries)
    {
        foreach (var entry in entries)
            MakeStorable(entry);
        await ChainAsync(write.Connection, write.Transaction, entries);
    }

    public void Committed(int entries) => metrics.AuditEntriesWritten(entries);

    private async Task CommitAsync(List<Pending> batch)
    {
        await using var write = await database.WriteAsync();
        await ChainAsync(write.Connection, write.Transaction, batch.Select(p => p.Entry).ToList());
        await write.CommitAsync();
    }

    /// <summary>Links entries to the newest stored one and inserts them; the lock (SQLite's write turn, PostgreSQL's advisory lock) is held until commit.</summary>
    private async Task ChainAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx, IReadOnlyList<AuditEntry> batch)
    {
        if (batch.Count == 0)
            return;
        if (database.Dialect == DbDialect.Postgres)
            await connection.ExecuteAsync("SELECT pg_advisory_xact_lock(@key)", new { key = PostgresLockKey }, tx);
        var last = await connection.QuerySingleOrDefaultAsync<LastRow>("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1", transaction: tx);
        var id = last?.Id ?? 0;
        var prev = last?.Hash ?? AuditChain.Genesis;
        var ts = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        foreach (var e in batch)
        {
            e.Id = ++id;
            e.Ts = ts;
            e.PrevHash = prev;
            e.Hash = AuditChain.ComputeHash(e);
            prev = e.Hash;
        }
        await connection.ExecuteAsync(InsertSql, batch, tx);
    }

    /// <summary>
    /// Request values end up in entries (a rejected name, a path, an error that quotes them). PostgreSQL text
    /// cannot hold NUL and the hash's UTF-8 writer refuses lone surrogates, and one such entry would fail its
    /// whole batch, so both become U+FFFD before the entry is hashed; SQLite stores the same for one chain format.
    /// </summary>
    private static void MakeStorable(AuditEntry e)
    {
        e.Actor = Storable(e.Actor);
        e.SourceIp = Storable(e.SourceIp);
        e.Action = Storable(e.Action)!;
        e.ResourceKind = Storable(e.ResourceKind);
        e.Namespace = Storable(e.Namespace);
        e.ResourceName = Storable(e.ResourceName);
        e.RequestBody = Storable(e.RequestBody);
        e.ErrorMessage = Storable(e.ErrorMessage);
        e.PrincipalId = Storable(e.PrincipalId);
        e.AuthMethod = Storable(e.AuthMethod);
        e.RequestId = Storable(e.RequestId);
        e.JobId = Storable(e.JobId);
        e.Cluster = Storable(e.Cluster);
    }

    private static string? Storable(string? value)
    {
        if (value is null)
            return null;
        var chars = value.ToCharArray();
        var changed = false;
        for (var i = 0; i < chars.Length; i++)
        {
            var c = chars[i];
            var pairedHigh = char.IsHighSurrogate(c) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]);
            if (pairedHigh)
            {
                i++;
                continue;
            }
            if (c == '\0' || char.IsSurrogate(c))
            {
                chars[i] = '\uFFFD';
                changed = true;
            }
        }
        return changed ? new string(chars) : value;
    }

    private sealed class LastRow
    {
        public long Id { get; set; }
        public string Hash { get; set; } = "";
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "Could not write {Count} audit entries; the requests that made them are refused")]
    private static partial void LogWriteFailed(ILogger logger, int count, Exception exception);
}
