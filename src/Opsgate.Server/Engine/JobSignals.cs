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
    // Copy-on-write arrays: appenders read them without a lock.
    private readonly ConcurrentDictionary<string, LiveSubscription[]> _subscriptions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Action<string?>> _running = new(StringComparer.Ordinal);

    /// <summary>A job became claimable (submitted, approved, retried, or a concurrency key was freed).</summary>
    /// <param name="children">Which pool can claim it (child jobs or the others), when known: only that pool looks.</param>
    public void JobQueued(bool? children = null)
    {
        if (children is { } child)
            _work[child ? 1 : 0].Writer.TryWrite(true);
        else
            WakeAll();
    }

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

    /// <summary>Events of the job were committed; live clients read them from the database.</summary>
    public void EventsAppended(string jobId)
    {
        if (_subscriptions.TryGetValue(jobId, out var subscriptions))
        {
            foreach (var s in subscriptions)
                s.Poke();
        }
    }

    /// <summary>
    /// Events of the job were committed with consecutive seqs from <paramref name="first"/>: live clients get them
    /// without a database read. Encoding waits for the first client that sends them, off the appender's path.
    /// </summary>
    public void EventsAppended(string jobId, long first, DateTime ts, IReadOnlyList<NewEvent> events)
    {
        if (!_subscriptions.TryGetValue(jobId, out var subscriptions))
            return;
        var frames = new EventFrame[events.Count];
        for (var i = 0; i < frames.Length; i++)
        {
            var e = events[i];
            frames[i] = new EventFrame(new JobEventRow { JobId = jobId, Seq = first + i, Ts = ts, Type = e.Type, StepOrder = e.StepOrder, Data = e.DataJson });
        }
        foreach (var s in subscriptions)
            s.Offer(frames);
    }

    /// <summary>Completes when events of any of the jobs are committed in this process, or after <paramref name="atMost"/> (another replica may have written some).</summary>
    public async Task WaitForEventsAsync(IEnumerable<string> jobIds, TimeSpan atMost, CancellationToken ct)
    {
        var subscriptions = jobIds.Select(Subscribe).ToList();
        try
        {
            await Task.WhenAny(subscriptions.Select(s => s.WaitAsync(atMost, ct)));
            ct.ThrowIfCancellationRequested();
        }
        finally
        {
            foreach (var subscription in subscriptions)
                subscription.Dispose();
        }
    }

    /// <summary>New events of the job as they are committed in this process, until disposed.</summary>
    public LiveSubscription Subscribe(string jobId)
    {
        var subscription = new LiveSubscription(jobId, Unsubscribe);
        lock (_subscriptions)
            _subscriptions[jobId] = _subscriptions.TryGetValue(jobId, out var others) ? [.. others, subscription] : [subscription];
        return subscription;
    }

    private void Unsubscribe(LiveSubscription subscription)
    {
        lock (_subscriptions)
        {
            if (!_subscriptions.TryGetValue(subscription.JobId, out var all))
                return;
            var rest = all.Where(s => s != subscription).ToArray();
            if (rest.Length == 0)
                _subscriptions.TryRemove(subscription.JobId, out _);
            else
                _subscriptions[subscription.JobId] = rest;
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
