using System.Threading.Channels;
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
/// <para>
/// The job engine's entries are written in the transaction of the change they record (<see cref="AppendWithinAsync"/>):
/// on SQLite chained there, since its writers take turns anyway; on PostgreSQL, where transitions of many jobs commit at
/// once, staged in <c>audit_staged</c> and chained by this writer's next batch, so they do not all queue on the chain's
/// lock. Staged entries are as durable as their change; ones a crashed process left are chained by any writer's sweep.
/// Reads of the log <see cref="FlushAsync"/> first, so a client that saw a change finds its entry.
/// </para>
/// </summary>
internal sealed partial class AuditWriter(Database database, IAuditAppend storage, TimeProvider time, OpsgateMetrics metrics, ILogger<AuditWriter> logger)
    : BackgroundService
{
    private const int MaxBatch = 512;
    /// <summary>How often the writer looks for staged entries nobody told it about (left by a process that stopped before chaining them).</summary>
    private static readonly TimeSpan StagedSweep = TimeSpan.FromSeconds(2);
    /// <summary>How long staged entries wait for more before they are chained (one batch for many job transitions).</summary>
    private static readonly TimeSpan StagedGather = TimeSpan.FromMilliseconds(5);
    /// <summary>Longest a read of the log waits for staged entries to be chained.</summary>
    private static readonly TimeSpan FlushPatience = TimeSpan.FromSeconds(5);

    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(
        new BoundedChannelOptions(50_000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    /// <summary>An entry to chain and its committer's wait; without an entry, a wake-up (entries were staged) or, with <paramref name="Done"/>, a flush.</summary>
    private sealed record Pending(AuditEntry? Entry, TaskCompletionSource? Done);

    private static readonly Pending WakeUp = new(null, null);

    // Entries this process staged that no batch has chained yet (PostgreSQL only).
    private long _unchained;

    /// <summary>Entries written within the engine's transactions are staged, chained later (PostgreSQL); see <see cref="IAuditAppend"/>.</summary>
    private bool Staging => storage.Stages;

    /// <summary>Completes once <paramref name="entry"/> is committed; throws <see cref="AuditUnavailableException"/> if it could not be.</summary>
    public async Task AppendAsync(AuditEntry entry)
    {
        MakeStorable(entry);
        var pending = new Pending(entry, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending))
            await _queue.Writer.WriteAsync(pending);
        await pending.Done!.Task;
    }

    /// <summary>
    /// Completes once the entries staged before the call (by this process, or by another whose writer has not chained them
    /// yet) are chained: at once when there are none; after <see cref="FlushPatience"/>, or when the writer fails, the
    /// caller reads the log as it is rather than hang or fail with it.
    /// </summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        if (!Staging || (Interlocked.Read(ref _unchained) == 0 && !await storage.AnyStagedAsync(ct)))
            return;
        var flush = new Pending(null, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await _queue.Writer.WriteAsync(flush, ct);
        }
        catch (ChannelClosedException)
        {
            return; // stopping: the log is read as it is
        }
        try
        {
            await flush.Done!.Task.WaitAsync(FlushPatience, ct);
        }
        catch (Exception e) when (e is TimeoutException or AuditUnavailableException)
        {
            // The log as it is.
        }
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
        var flushes = new List<TaskCompletionSource>();
        // Entries a previous run staged and did not chain go first.
        var more = Staging;
        void Take()
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var pending))
            {
                if (pending.Entry is not null)
                    batch.Add(pending);
                else if (pending.Done is not null)
                    flushes.Add(pending.Done);
            }
        }
        while (more || await WaitAsync())
        {
            Take();
            if (batch.Count == 0 && flushes.Count == 0 && !more)
            {
                // Only wake-ups: nobody waits for staged entries, so they gather for a moment and are chained together,
                // unless a request's entry or a flush comes first.
                using var gather = new CancellationTokenSource(StagedGather);
                while (batch.Count == 0 && flushes.Count == 0 && !gather.IsCancellationRequested)
                {
                    try
                    {
                        if (!await _queue.Reader.WaitToReadAsync(gather.Token))
                            break;
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    Take();
                }
            }
            var owed = Interlocked.Read(ref _unchained);
            try
            {
                var staged = await CommitAsync(batch);
                metrics.AuditEntriesWritten(batch.Count + staged);
                foreach (var p in batch)
                    p.Done!.TrySetResult();
                // A full take of staged entries may have left more behind: flushes wait for the batch that finds no more.
                more = staged == MaxBatch;
                if (!more)
                {
                    Interlocked.Add(ref _unchained, -owed);
                    flushes.ForEach(f => f.TrySetResult());
                    flushes.Clear();
                }
            }
            catch (Exception e)
            {
                more = false;
                LogWriteFailed(logger, batch.Count, e);
                foreach (var p in batch)
                    p.Done!.TrySetException(new AuditUnavailableException(e));
                flushes.ForEach(f => f.TrySetException(new AuditUnavailableException(e)));
                flushes.Clear();
            }
            batch.Clear();
        }
        // Stopping: what this process staged is chained now rather than by the next start.
        if (Staging && Interlocked.Read(ref _unchained) > 0)
        {
            try
            {
                while (await CommitAsync(batch) == MaxBatch)
                {
                }
            }
            catch (Exception e)
            {
                LogWriteFailed(logger, 0, e);
            }
        }
    }

    /// <summary>Waits for queued entries; false once stopping and drained. When staging, also returns every <see cref="StagedSweep"/>.</summary>
    private async ValueTask<bool> WaitAsync()
    {
        if (!Staging)
            return await _queue.Reader.WaitToReadAsync(CancellationToken.None);
        using var sweep = new CancellationTokenSource(StagedSweep);
        try
        {
            return await _queue.Reader.WaitToReadAsync(sweep.Token);
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    /// <summary>
    /// Writes the job engine's <paramref name="entries"/> inside the caller's write transaction, so they commit (or roll
    /// back) with the change they record and need no round through the queue: chained at once on SQLite, staged on
    /// PostgreSQL. Call <see cref="Committed"/> after the commit.
    /// </summary>
    public async Task AppendWithinAsync(WriteScope write, IReadOnlyList<AuditEntry> entries)
    {
        foreach (var entry in entries)
            MakeStorable(entry);
        if (!Staging)
        {
            await ChainAsync(write, entries);
            return;
        }
        var ts = Now();
        foreach (var entry in entries)
        {
            entry.Ts = ts;
            await storage.StageLaterAsync(write, entry);
        }
    }

    /// <summary>The transaction holding entries from <see cref="AppendWithinAsync"/> committed.</summary>
    public void Committed(int entries)
    {
        if (!Staging)
        {
            metrics.AuditEntriesWritten(entries);
            return;
        }
        Interlocked.Add(ref _unchained, entries);
        // A full queue means the writer is busy, and every batch also takes staged entries.
        _queue.Writer.TryWrite(WakeUp);
    }

    private DateTime Now() => time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();

    /// <returns>How many staged entries the batch chained too.</returns>
    private async Task<int> CommitAsync(List<Pending> batch)
    {
        await using var write = await database.WriteAsync();
        var staged = await ChainAsync(write, batch.Select(p => p.Entry!).ToList());
        await write.CommitAsync();
        return staged;
    }

    /// <summary>
    /// Links entries to the newest stored one and inserts them; the lock (SQLite's write turn, PostgreSQL's advisory lock) is
    /// held until commit. On PostgreSQL staged entries (up to <see cref="MaxBatch"/>, oldest first) are moved into the log
    /// ahead of <paramref name="entries"/>: they were committed before these requests finished.
    /// </summary>
    /// <returns>How many staged entries were taken.</returns>
    private async Task<int> ChainAsync(WriteScope write, IReadOnlyList<AuditEntry> entries)
    {
        if (entries.Count == 0 && !Staging)
            return 0;
        var head = await storage.HeadAsync<AuditEntry>(write, MaxBatch);
        var staged = head.Staged;
        // Stamped once the lock is had, so entries stamped here follow each other in id order. Staged entries keep the time
        // of the change they record and may be chained after newer ones: the log's order is its ids.
        var ts = Now();
        foreach (var e in entries)
            e.Ts = ts;
        var batch = staged.Count == 0 ? entries : [.. staged, .. entries];
        if (batch.Count == 0)
            return 0;
        var id = head.LastId ?? 0;
        var prev = head.LastHash ?? AuditChain.Genesis;
        foreach (var e in batch)
        {
            e.Id = ++id;
            e.PrevHash = prev;
            e.Hash = AuditChain.ComputeHash(e);
            prev = e.Hash;
        }
        // On PostgreSQL sent with the commit.
        await storage.InsertAsync(write, batch);
        return staged.Count;
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
        // Nearly always: nothing to replace, nothing to copy.
        if (value is null || (!value.Contains('\0', StringComparison.Ordinal) && value.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0))
            return value;
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

    [LoggerMessage(EventId = 200, Level = LogLevel.Error, Message = "Could not write {Count} audit entries; the requests that made them are refused")]
    private static partial void LogWriteFailed(ILogger logger, int count, Exception exception);
}
