namespace Opsgate.Server.Engine;

/// <summary>
/// A step's start (running, its step.started event and audit entry), held back while the step runs, so a quick step
/// writes its start and its end in one transaction instead of two. The start goes with the step's next write
/// (<see cref="WithStartAsync"/>), or on its own once the step has run for <c>Jobs:StepStartHold</c>. Only for steps
/// that may run again after a crash, whose executor writes nothing about the job itself: a start lost in a crash means
/// the resumed job runs the step again, as it would had the crash come just before the start.
/// </summary>
internal sealed class HeldStepStart(JobStore store, string owner, TimeSpan holdFor, TimeProvider time) : IDisposable
{
    private readonly Lock _gate = new();
    private StepWrite? _held;
    /// <summary>The start being written on its own, and that write.</summary>
    private (StepWrite Start, Task Write)? _writing;
    private ITimer? _timer;

    /// <summary>Holds <paramref name="start"/> (the step as it is now) until the step's next write or the hold time, whichever comes first.</summary>
    public void Hold(StepWrite start)
    {
        lock (_gate)
        {
            (_held, _writing) = (start with { Step = start.Step.Snapshot() }, null);
            _timer?.Dispose();
            _timer = time.CreateTimer(_ => Write(), null, holdFor, Timeout.InfiniteTimeSpan);
        }
    }

    private void Write()
    {
        lock (_gate)
        {
            if (_held is not { } start)
                return;
            _held = null;
            // Off the lock's thread (SQLite runs a whole write synchronously). Guarded by the lease like every write of
            // the run: if the lease is lost, so is the step's next write, which says so.
            _writing = (start, Task.Run(() => store.UpdateStepAsync(start, owner, CancellationToken.None)));
        }
    }

    /// <summary>
    /// <paramref name="change"/>, with the held start ahead of it if that is still held; else <paramref name="change"/>
    /// once the start's own write is done, so the step's writes land in order. A start whose own write failed (its
    /// transaction rolled back) goes ahead of <paramref name="change"/> again.
    /// </summary>
    public async Task<StepWrite> WithStartAsync(StepWrite change)
    {
        (StepWrite Start, Task Write)? writing;
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
            if (_held is { } start)
            {
                _held = null;
                return start.Then(change);
            }
            (writing, _writing) = (_writing, null);
        }
        if (writing is not { } own)
            return change;
        try
        {
            await own.Write;
            return change;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return own.Start.Then(change);
        }
    }

    public void Dispose()
    {
        lock (_gate)
            _timer?.Dispose();
    }
}
