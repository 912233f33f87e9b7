using Microsoft.Extensions.Options;
using Opsgate.Server.Engine;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Submits wait for the engine only while jobs queue up and the engine is working through them, one submit per job taken, and never long.</summary>
public sealed class JobAdmissionTests
{
    // Four workers: a submit waits once one job waits to start.
    private static JobAdmission Admission(TimeSpan maxWait) => new(Options.Create(new JobsOptions { Workers = 4 }), maxWait);

    [Fact]
    public async Task A_submit_goes_at_once_while_no_job_waits()
    {
        using var admission = Admission(TimeSpan.FromSeconds(30));
        admission.Claimed(1, full: true);
        await admission.AdmitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task While_jobs_wait_and_the_engine_takes_them_each_job_taken_lets_one_waiting_submit_go()
    {
        using var admission = Admission(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 2; i++)
            admission.Queued();
        admission.Claimed(1, full: true);
        var first = admission.AdmitAsync(CancellationToken.None);
        var second = admission.AdmitAsync(CancellationToken.None);
        await Task.Delay(50);
        Assert.False(first.IsCompleted || second.IsCompleted);

        admission.Claimed(1, full: true);
        var gone = await Task.WhenAny(first, second).WaitAsync(TimeSpan.FromSeconds(5));
        await Task.Delay(50);
        Assert.False((gone == first ? second : first).IsCompleted);
        admission.Claimed(1, full: true);
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_queue_that_grew_drains_before_waiting_submits_go_on()
    {
        using var admission = Admission(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 10; i++)
            admission.Queued();
        admission.Claimed(1, full: true);
        var submit = admission.AdmitAsync(CancellationToken.None);
        // Jobs taken while more than two still wait (twice the one a submit waits behind) do not let it go: the queue shrinks.
        for (var taken = 0; taken < 7; taken++)
            admission.Claimed(1, full: true);
        await Task.Delay(50);
        Assert.False(submit.IsCompleted);
        admission.Claimed(1, full: true);
        await submit.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_job_claimed_before_its_submit_counted_it_does_not_stay_counted()
    {
        using var admission = Admission(TimeSpan.FromSeconds(30));
        // The engine takes the job between its commit and its submit counting it.
        admission.Claimed(1, full: true);
        admission.Queued();
        // Nothing waits, so the next submit goes at once.
        await admission.AdmitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_submit_waits_no_longer_than_the_longest_wait()
    {
        using var admission = Admission(TimeSpan.FromMilliseconds(300));
        for (var i = 0; i < 3; i++)
            admission.Queued();
        admission.Claimed(1, full: true);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await admission.AdmitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_submit_does_not_wait_when_the_engine_takes_nothing()
    {
        // Jobs wait, but none was taken lately (long jobs hold every worker): pacing submits would only slow them.
        using var admission = Admission(TimeSpan.FromMilliseconds(200));
        admission.Claimed(1, full: true);
        for (var i = 0; i < 5; i++)
            admission.Queued();
        await Task.Delay(400);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await admission.AdmitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(watch.Elapsed < TimeSpan.FromMilliseconds(150), $"waited {watch.Elapsed}");
    }

    [Fact]
    public async Task A_submit_does_not_wait_when_what_waits_cannot_be_taken()
    {
        // The last claim found fewer jobs than free slots: what waits is held back (a concurrency key) or is no one's to take.
        using var admission = Admission(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 5; i++)
            admission.Queued();
        admission.Claimed(1, full: false);
        await admission.AdmitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task The_database_count_replaces_the_local_one()
    {
        using var admission = Admission(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 5; i++)
            admission.Queued();
        admission.Claimed(1, full: true);
        // Another replica took the rest: the count tick says none wait.
        admission.Counted(0);
        await admission.AdmitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }
}
