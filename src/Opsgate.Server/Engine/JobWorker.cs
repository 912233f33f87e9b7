using Microsoft.Extensions.Options;
using Opsgate.Server.Observability;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>
/// Runs up to Jobs:Workers jobs at once, and up to Jobs:ChildWorkers child jobs (shards) besides. An idle slot claims work when woken (a submit here, a NOTIFY from
/// another replica on PostgreSQL) or on the poll tick, which also finds jobs whose worker died. Several
/// processes can share one database: the claim gives each job to exactly one of them at a time.
/// </summary>
internal sealed partial class JobWorker : BackgroundService
{
    private readonly JobStore store;
    private readonly JobRunner runner;
    private readonly JobSignals signals;
    private readonly JobCommands commands;
    private readonly JobAdmission admission;
    private readonly IJobWakeUps wakeUps;
    private readonly IOptions<JobsOptions> options;
    private readonly ILogger<JobWorker> logger;

    public JobWorker(JobStore store, JobRunner runner, JobSignals signals, JobCommands commands, JobAdmission admission, IJobWakeUps wakeUps,
        IOptions<JobsOptions> options, OpsgateMetrics metrics, ILogger<JobWorker> logger)
    {
        (this.store, this.runner, this.signals, this.commands, this.admission, this.wakeUps, this.options, this.logger) =
            (store, runner, signals, commands, admission, wakeUps, options, logger);
        metrics.Meter.CreateObservableGauge("opsgate_jobs_queued", () => Queued, description: "Jobs waiting for a worker (pending), as of the last count.");
    }

    public string Owner { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";

    private long _claims;

    /// <summary>Pending jobs at the last count (for opsgate_jobs_queued).</summary>
    public long Queued { get; private set; }

    /// <summary>
    /// Two pools of slots: Jobs:Workers for top-level jobs and Jobs:ChildWorkers for child jobs (the shards of a sharded
    /// Ansible run). A sharded parent holds its slot while it waits for its children; since children never take a
    /// top-level slot and parents never take a child slot, parents cannot starve their own children of slots (with one
    /// shared pool, N waiting parents on N slots would wait forever). Children wait for nothing, so their pool drains.
    /// </summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        // Wake-ups from other processes (PostgreSQL's NOTIFY; none on SQLite, where the poll tick finds their work).
        var listening = wakeUps.ListenAsync(() => signals.JobQueued(), stoppingToken);
        var counting = CountQueuedAsync(settings.PollInterval, stoppingToken);
        await Task.WhenAll(RunPoolAsync(settings.Workers, children: false, stoppingToken), RunPoolAsync(settings.ChildWorkers, children: true, stoppingToken));
        await Task.WhenAll(listening, counting);
    }

    private async Task RunPoolAsync(int workers, bool children, CancellationToken stoppingToken)
    {
        var settings = options.Value;
        using var slots = new SemaphoreSlim(workers);
        var running = new List<Task>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                // Every free slot claims at once, in one transaction.
                await slots.WaitAsync(stoppingToken);
                var free = 1;
                while (slots.Wait(0, CancellationToken.None))
                    free++;
                // Each claim gets its own lease token: if this slot's lease lapses (a stalled heartbeat) and another
                // slot of this same process takes the job over, the first slot's writes must fail its lease check.
                var leases = Enumerable.Range(0, free).Select(_ => $"{Owner}#{Interlocked.Increment(ref _claims)}").ToList();
                IReadOnlyList<ClaimedJob> claimed = [];
                try
                {
                    claimed = await store.ClaimAsync(leases, Owner, settings.LeaseDuration, children, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogClaimFailed(logger, e);
                }
                if (free > claimed.Count)
                    slots.Release(free - claimed.Count);
                if (!children)
                    admission.Claimed(claimed.Count, full: claimed.Count == free);
                running.RemoveAll(t => t.IsCompleted);
                foreach (var claim in claimed)
                    running.Add(Task.Run(() => RunAsync(claim, slots, stoppingToken), CancellationToken.None));
                // Fewer than asked for: the queue is empty (claiming again at once would cost a search per job when jobs
                // trickle in). A batch with two jobs of one concurrency key takes one and may leave another job behind
                // them: the next finish (it wakes every pool) or the poll tick claims it.
                if (claimed.Count < free)
                    await signals.WaitForWorkAsync(settings.PollInterval, children, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: the runners release their leases.
        }
        await Task.WhenAll(running);
    }

    private async Task RunAsync(ClaimedJob claim, SemaphoreSlim slot, CancellationToken stoppingToken)
    {
        try
        {
            await runner.RunAsync(claim, stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The lease expires and the job is retried from its unfinished step by whoever claims it next.
            LogRunFailed(logger, claim.Job.Id, e);
        }
        finally
        {
            slot.Release();
        }
    }

    /// <summary>Housekeeping on a timer: the queued-jobs gauge, and approvals that ran out of time.</summary>
    private async Task CountQueuedAsync(TimeSpan interval, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval < TimeSpan.FromSeconds(2) ? TimeSpan.FromSeconds(2) : interval);
        try
        {
            do
            {
                try
                {
                    Queued = await store.CountAsync(JobStatus.Pending, ct);
                    admission.Counted(await store.CountClaimableAsync(ct));
                    await commands.ExpireApprovalsAsync(ct);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogClaimFailed(logger, e);
                }
            }
            while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    [LoggerMessage(EventId = 610, Level = LogLevel.Error, Message = "Looking for work failed")]
    private static partial void LogClaimFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 611, Level = LogLevel.Error, Message = "Running job {JobId} failed unexpectedly; it resumes when its lease expires")]
    private static partial void LogRunFailed(ILogger logger, string jobId, Exception exception);
}
