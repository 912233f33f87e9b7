namespace Opsgate.Server.Engine;

/// <summary>
/// A step's start (running, its step.started event and audit entry), held back while the step runs, so a quick step
/// writes its start and its end in one transaction instead of two. The start goes with the step's next write
/// (<see cref="WithStartAsync"/>), or on its own once the step has run for <see cref="HoldFor"/>. Only for steps that
/// may run again after a crash, whose executor writes nothing about the job itself: a start lost in a crash means the
/// resumed job runs the step again, as it would had the crash come just before the start.
/// </summary>
internal sealed class HeldStepStart(JobStore store, string owner, TimeProvider time) : IDisposable
{
    /// <summary>How long a running step may show as not started yet (in the job's steps and its event stream).</summary>
    public static readonly TimeSpan HoldFor = TimeSpan.FromMilliseconds(50);

    private readonly Lock _gate = new();
    private StepWrite? _held;
    private Task? _written;
    private ITimer? _timer;

    /// <summary>Holds <paramref name="start"/> (the step as it is now) until the step's next write or <see cref="HoldFor"/>, whichever comes first.</summary>
    public void Hold(StepWrite start)
    {
        lock (_gate)
        {
            (_held, _written) = (start with { Step = start.Step.Snapshot() }, null);
            _timer?.Dispose();
            _timer = time.CreateTimer(_ => Write(), null, HoldFor, Timeout.InfiniteTimeSpan);
        }
    }

    private void Write()
    {
        lock (_gate)
        {
            if (_held is not { } start)
                return;
            _held = null;
            // Guarded by the lease like every write of the run: if it is lost, so is the step's next write, which says so.
            _written = store.UpdateStepAsync(start, owner, CancellationToken.None);
        }
    }

    /// <summary>
    /// <paramref name="change"/>, with the held start ahead of it if that is still held; else <paramref name="change"/>
    /// once the start's own write is done, so the step's writes land in order.
    /// </summary>
    public async Task<StepWrite> WithStartAsync(StepWrite change)
    {
        Task? written;
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
            if (_held is { } start)
            {
                _held = null;
                return start.Then(change);
            }
            (written, _written) = (_written, null);
        }
        if (written is not null)
            await written;
        return change;
    }

    public void Dispose()
    {
        lock (_gate)
            _timer?.Dispose();
    }
}
