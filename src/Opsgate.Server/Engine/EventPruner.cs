using Dapper;
using Microsoft.Extensions.Options;
using Opsgate.Server.Observability;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>
/// Event retention (<c>Jobs:EventRetention</c>): deletes the events of jobs that finished longer ago than that, and keeps
/// the jobs, their steps and their per-host results. A job is first marked (<c>events_pruned_seq</c> = its last seq,
/// so a reader is told its events were pruned rather than shown a part of them), then its events are deleted in
/// batches of <c>Jobs:EventPruneBatch</c>, each its own short write transaction, so writers never wait behind one huge
/// delete. A prune cut short by a crash is finished after the next start.
/// </summary>
internal sealed partial class EventPruner(JobSecrets secrets, Database database, JobStore store, IOptions<JobsOptions> options, OpsgateMetrics metrics, TimeProvider time,
    ILogger<EventPruner> logger) : BackgroundService
{
    private const int JobsPerRound = 100;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (o.EventRetention == TimeSpan.Zero)
            return;
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(o.EventPruneInterval.TotalMilliseconds, 10_000)), time, stoppingToken);
            var leftovers = true;
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    var pruned = await PruneAsync(store.Now() - o.EventRetention, leftovers, stoppingToken);
                    leftovers = false;
                    if (pruned.Events > 0)
                        LogPruned(logger, pruned.Events, pruned.Jobs, o.EventRetention);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The database may be away for a moment; the next round tries again.
                    LogFailed(logger, e);
                }
                await Task.Delay(o.EventPruneInterval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    /// <summary>One round: every job finished before <paramref name="cutoff"/> whose events are still there.</summary>
    /// <param name="leftovers">Also finish prunes a crash cut short (once per start: it looks at every pruned job).</param>
    internal async Task<(long Events, int Jobs)> PruneAsync(DateTime cutoff, bool leftovers, CancellationToken ct)
    {
        long events = 0;
        var jobs = 0;
        if (leftovers)
        {
            List<(string Id, long Through)> unfinished;
            await using (var connection = await database.OpenAsync(ct))
            {
                unfinished = (await connection.QueryAsync<(string, long)>(
                    """
                    SELECT id, events_pruned_seq FROM jobs j WHERE events_pruned_seq IS NOT NULL
                        AND EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = j.id AND e.seq <= j.events_pruned_seq)
                    """)).AsList();
            }
            foreach (var (id, through) in unfinished)
                events += await DeleteAsync(id, through, ct);
        }
        while (true)
        {
            List<string> due;
            await using (var connection = await database.OpenAsync(ct))
            {
                due = (await connection.QueryAsync<string>(
                    "SELECT id FROM jobs WHERE (events_pruned_seq IS NULL OR events_pruned_seq < last_seq) AND finished_at IS NOT NULL AND finished_at < @cutoff " +
                    "AND (parent_id IS NULL OR relayed_seq >= last_seq) ORDER BY finished_at LIMIT @n",
                    new { cutoff, n = JobsPerRound })).AsList();
            }
            foreach (var id in due)
            {
                ct.ThrowIfCancellationRequested();
                if (await MarkAsync(id, cutoff, ct) is not { } through)
                    continue;
                jobs++;
                events += await DeleteAsync(id, through, ct);
            }
            if (due.Count < JobsPerRound)
                return (events, jobs);
        }
    }

    /// <summary>Marks the job's events up to its last seq as pruned; null if it is no longer a finished job past the cutoff.</summary>
    private async Task<long?> MarkAsync(string id, DateTime cutoff, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        var through = await write.Connection.QuerySingleOrDefaultAsync<long?>(
            """
            UPDATE jobs SET events_pruned_seq = last_seq, events_pruned_at = @now
            WHERE id = @id AND (events_pruned_seq IS NULL OR events_pruned_seq < last_seq) AND finished_at < @cutoff AND status IN ('succeeded', 'failed', 'cancelled')
              AND (parent_id IS NULL OR relayed_seq >= last_seq)
            RETURNING last_seq
            """, new { id, cutoff, now = store.Now() }, write.Transaction);
        await write.CommitAsync(ct);
        return through;
    }

    private async Task<long> DeleteAsync(string id, long through, CancellationToken ct)
    {
        var batch = options.Value.EventPruneBatch;
        long deleted = 0;
        // Seq ranges in primary-key order: each batch is an index range, found without a scan.
        for (long from = 0; from < through; from += batch)
        {
            await using var write = await database.WriteAsync(ct);
            var n = await write.Connection.ExecuteAsync(
                "DELETE FROM job_events WHERE job_id = @id AND seq > @from AND seq <= @to",
                new { id, from, to = Math.Min(from + batch, through) }, write.Transaction);
            await write.CommitAsync(ct);
            deleted += n;
            metrics.EventsPruned(n);
        }
        // The job's secret parameters go with its events: a job past retention has nothing left to run them for.
        await secrets.DeleteAsync(id, ct);
        return deleted;
    }

    [LoggerMessage(EventId = 1200, Level = LogLevel.Information, Message = "Event retention: deleted {Events} events of {Jobs} jobs finished more than {Retention} ago")]
    private static partial void LogPruned(ILogger logger, long events, int jobs, TimeSpan retention);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "Event retention: pruning failed; trying again next round")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
