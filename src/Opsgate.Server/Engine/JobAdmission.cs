using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Opsgate.Server.Engine;

/// <summary>
/// Accepted work first: while more jobs wait to start than <see cref="Ahead"/> and the engine is working through them
/// (its last claim filled every free slot, within the last 100 ms), a submit waits for the engine to take one and the
/// queue to be back within twice <see cref="Ahead"/> (at most 100 ms). A burst is then accepted at the pace jobs start,
/// a few milliseconds later each, instead of piling up a queue that makes every job in it wait seconds to start. When nothing is being taken (long jobs hold every worker) or what
/// waits cannot be taken (its concurrency key is held; child jobs, which have slots of their own), a submit does not
/// wait at all: pacing it would only slow it down.
/// The count of waiting jobs is this process's (its submits less its claims), set on every count tick to the database's
/// count of the jobs that could be taken (top-level, concurrency key free), so jobs submitted or claimed by another
/// replica, and jobs that wait for a key, are seen within that tick.
/// </summary>
/// <param name="maxWait">Longest a submit waits (default 100 ms): no more than a queue behind jobs that do not start costs it.</param>
internal sealed class JobAdmission(IOptions<JobsOptions> options, TimeSpan? maxWait = null) : IDisposable
{
    private readonly TimeSpan _maxWait = maxWait ?? TimeSpan.FromMilliseconds(100);

    private readonly SemaphoreSlim _taken = new(0);
    private long _waiting;
    private long _waiters;
    private long _lastClaim;
    private volatile bool _backlog;

    /// <summary>Waiting jobs beyond which a submit waits for the engine: enough for the workers that free up next.</summary>
    private int Ahead => Math.Max(1, options.Value.Workers / 4);

    /// <summary>Completes when the job may be queued: at once, or once the engine took a waiting job, or after the longest wait.</summary>
    public async Task AdmitAsync(CancellationToken ct)
    {
        if (!_backlog || Interlocked.Read(ref _waiting) < Ahead || Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastClaim)) > _maxWait)
            return;
        Interlocked.Increment(ref _waiters);
        try
        {
            await _taken.WaitAsync(_maxWait, ct);
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
        }
    }

    /// <summary>A job was queued (pending) here.</summary>
    public void Queued() => Interlocked.Increment(ref _waiting);

    /// <summary>
    /// The engine here took <paramref name="jobs"/> waiting jobs: as many waiting submits go on, but no more than bring
    /// the queue back to twice <see cref="Ahead"/>, so a queue that grew (the engine stalled, another replica's
    /// submits) drains instead of staying as long as it got.
    /// </summary>
    /// <param name="full">As many as it had free slots for: more may wait that it can take.</param>
    public void Claimed(int jobs, bool full)
    {
        _backlog = full && jobs > 0;
        if (jobs == 0)
            return;
        Interlocked.Exchange(ref _lastClaim, Stopwatch.GetTimestamp());
        // Not floored at zero: a job can be claimed before its submit counted it (the submit counts once its commit
        // returns), and a floor would then keep that job counted as waiting until the next count tick.
        var waiting = Interlocked.Add(ref _waiting, -jobs);
        var release = (int)Math.Min(Math.Min(jobs, Interlocked.Read(ref _waiters)), Math.Max(0, 2 * Ahead - waiting));
        if (release > 0)
            _taken.Release(release);
    }

    /// <summary>The database's count of waiting jobs (every replica's).</summary>
    public void Counted(long waiting) => Interlocked.Exchange(ref _waiting, waiting);

    public void Dispose() => _taken.Dispose();
}
