using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Opsgate.Server.Engine;

/// <summary>
/// In-process wake-ups, so work starts and events reach readers within milliseconds instead of on a poll tick.
/// They are hints only: the database stays the truth, and every waiter also re-checks on a timeout (which is
/// how work submitted through another replica is seen on SQLite; PostgreSQL adds LISTEN/NOTIFY).
/// </summary>
internal sealed class JobSignals
{
    // One wake-up per slot pool (top-level jobs, child jobs): a wake-up taken by the pool that cannot claim the job
    // would otherwise leave the other asleep until its poll tick.
    private readonly Channel<bool>[] _work = [NewWakeUp(), NewWakeUp()];
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _eventWaiters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Action<string?>> _running = new(StringComparer.Ordinal);

    /// <summary>A job became claimable (submitted, approved, retried, or a concurrency key was freed).</summary>
    public void JobQueued() => WakeAll();

    public void JobFinished() => WakeAll();

    private static Channel<bool> NewWakeUp() => Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    private void WakeAll()
    {
        foreach (var work in _work)
            work.Writer.TryWrite(true);
    }

    /// <param name="children">Which pool waits: the child-job slots, or the others.</param>
    public async Task WaitForWorkAsync(TimeSpan atMost, bool children, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(atMost);
        try
        {
            await _work[children ? 1 : 0].Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // Poll tick: look for expired leases and work submitted elsewhere.
        }
    }

    public void EventsAppended(string jobId)
    {
        if (_eventWaiters.TryRemove(jobId, out var waiter))
            waiter.TrySetResult();
    }

    /// <summary>Completes when new events of the job were appended here, or after <paramref name="atMost"/>.</summary>
    public async Task WaitForEventsAsync(string jobId, TimeSpan atMost, CancellationToken ct)
    {
        var waiter = _eventWaiters.GetOrAdd(jobId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await waiter.Task.WaitAsync(atMost, ct);
        }
        catch (TimeoutException)
        {
            // Re-read the database anyway: another replica may have written events.
        }
    }

    /// <summary>Registers a job this process runs; <paramref name="cancel"/> is called with who asked to cancel it.</summary>
    public void Running(string jobId, Action<string?> cancel) => _running[jobId] = cancel;

    public void Stopped(string jobId) => _running.TryRemove(jobId, out _);

    /// <summary>Cancels the job now if this process runs it (others notice the flag on their next heartbeat).</summary>
    public void Cancel(string jobId, string? by)
    {
        if (_running.TryGetValue(jobId, out var cancel))
        {
            try
            {
                cancel(by);
            }
            catch (ObjectDisposedException)
            {
                // The job just finished.
            }
        }
    }
}
