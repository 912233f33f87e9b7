using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Cancel and timeouts during a retry backoff, retrying a timed-out job, approval expiry, and following a retried job live.</summary>
public sealed class JobLifecycleTests
{
    private static async Task<TempDir> RunbooksAsync(params (string File, string Yaml)[] runbooks)
    {
        var dir = new TempDir();
        foreach (var (file, yaml) in runbooks)
            await File.WriteAllTextAsync(Path.Combine(dir.Path, file), yaml);
        return dir;
    }

    [Fact]
    public async Task Cancel_or_the_job_timeout_during_a_retry_backoff_leaves_no_step_running()
    {
        using var dir = await RunbooksAsync(
            ("backoff.yaml", """
                name: backoff
                steps:
                  - {name: flaky, kind: sleep, with: {duration: 30s}, timeout: 50ms, attempts: 3, backoff: 30s}
                """),
            ("backoff-bounded.yaml", """
                name: backoff-bounded
                options: {timeout: 1s}
                steps:
                  - {name: flaky, kind: sleep, with: {duration: 30s}, timeout: 50ms, attempts: 3, backoff: 30s}
                """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]);

        var id = await TestJobs.SubmitAsync(server.Admin, "backoff");
        await TestJobs.WaitAsync(server.Admin, id, j => j.Step("flaky").GetProperty("detail").GetString()?.Contains("retrying", StringComparison.Ordinal) == true);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null)).StatusCode);
        var cancelled = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(10));
        Assert.Equal("cancelled", cancelled.Status());
        Assert.Equal(["skipped"], cancelled.StepStatuses());
        Assert.NotNull(cancelled.Step("flaky").GetProperty("finished_at").GetString());

        var timedOut = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "backoff-bounded"), timeout: TimeSpan.FromSeconds(10));
        Assert.Equal("failed", timedOut.Status());
        Assert.Contains("timed out", timedOut.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(["skipped"], timedOut.StepStatuses());
    }

    [Fact]
    public async Task A_job_that_timed_out_gets_its_whole_timeout_again_when_retried()
    {
        using var dir = await RunbooksAsync(("bounded-gate.yaml", """
            name: bounded-gate
            options: {timeout: 1s}
            steps:
              - {name: gate, kind: test.gate}
            """));
        var gate = new GateStep();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"], gate.AddTo);
        var id = await TestJobs.SubmitAsync(server.Admin, "bounded-gate");
        var failed = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(10));
        Assert.Equal("failed", failed.Status());
        Assert.Contains("timed out", failed.GetProperty("error").GetString(), StringComparison.Ordinal);

        gate.Release();
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/retry", null)).StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(10));
        Assert.True(job.Status() == "succeeded", job.ToString());
    }

    [Fact]
    public async Task An_approval_that_ran_out_of_time_cannot_be_given_and_its_expiry_is_audited()
    {
        using var dir = await RunbooksAsync(("short.yaml", """
            name: short
            options: {requires_approval: true, approval_timeout: 200ms}
            steps:
              - {name: only, kind: noop}
            """));
        // Housekeeping (which expires approvals) runs at start and then only once a minute.
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}", "--Jobs:PollInterval=00:01:00"]);
        var approver = server.Client((await server.CreateKeyAsync("anna", "approver")).Key);
        var id = await TestJobs.SubmitAsync(server.Admin, "short");
        await TestJobs.WaitAsync(server.Admin, id, j => j.GetProperty("approval_expires_at").GetDateTime().ToUniversalTime() < DateTime.UtcNow);

        await Problem.AssertAsync(await approver.PostAsJsonAsync($"/api/v1/jobs/{id}/approve", new { comment = "late" }), HttpStatusCode.Conflict);
        var job = await TestJobs.GetAsync(server.Admin, id);
        Assert.Equal("cancelled", job.Status());
        Assert.Contains("approval timeout", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=100");
        Assert.Contains(audit.GetProperty("items").EnumerateArray(),
            e => e.GetProperty("job_id").GetString() == id && e.GetProperty("action").GetString() == "job.approval_expired");
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Jobs_queued_together_are_claimed_together_each_once_and_a_concurrency_key_still_lets_one_run_at_a_time(Provider provider)
    {
        using var dir = await RunbooksAsync(("keyed-sleep.yaml", """
            name: keyed-sleep
            parameters:
              - {name: key, type: string, required: true}
            options: {concurrency_key: "{{ params.key }}"}
            steps:
              - {name: first, kind: noop}
              - {name: nap, kind: sleep, with: {duration: 150ms}}
            """));
        // Eight free slots meet twelve queued jobs at once: the idle slots claim in one go, and four jobs share key "k".
        await using var server = await OpsgateServer.StartAsync(provider, [$"--Jobs:RunbookDirectory={dir.Path}", "--Jobs:Workers=8"]);
        var ids = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => TestJobs.SubmitAsync(server.Admin, "keyed-sleep", new { key = i % 3 == 0 ? "k" : $"own-{i}" })));
        var jobs = await Task.WhenAll(ids.Select(id => TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(30))));

        Assert.All(jobs, j =>
        {
            Assert.Equal("succeeded", j.Status());
            Assert.Equal(1, j.GetProperty("attempt").GetInt32());
            Assert.Equal(["succeeded", "succeeded"], j.StepStatuses());
        });
        var keyed = Enumerable.Range(0, ids.Length).Where(i => i % 3 == 0).Select(i => jobs[i])
            .Select(j => (Start: j.GetProperty("started_at").GetDateTime(), End: j.GetProperty("finished_at").GetDateTime()))
            .OrderBy(r => r.Start).ToList();
        Assert.Equal(4, keyed.Count);
        // Each ran its 150 ms nap alone. The next one's start is stamped as its claim begins, which on PostgreSQL may be a round
        // trip before the holder's finish commits (the claim itself waits for that commit).
        for (var i = 1; i < keyed.Count; i++)
            Assert.True(keyed[i].Start >= keyed[i - 1].End - TimeSpan.FromMilliseconds(50), $"two jobs of key 'k' ran at once: {keyed[i - 1]} and {keyed[i]}");

        // Each job's stream, with the last step recorded in the job's finishing write: every event once, in order.
        var events = await JobEventsTests.ReadSseAsync(server.Admin, $"/api/v1/jobs/{ids[1]}/events", null);
        Assert.Equal(["job.created", "job.started", "step.started", "step.succeeded", "step.started", "step.succeeded", "job.finished"], events.Select(e => e.Type));
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?limit=500");
        var actions = audit.GetProperty("items").EnumerateArray().Where(e => e.GetProperty("job_id").GetString() == ids[1])
            .Select(e => e.GetProperty("action").GetString()).Reverse().ToList();
        // The submit's entry is written by the request as it ends, so the engine may have started the job before it.
        Assert.Single(actions, a => a == "job.submit");
        Assert.Equal(["job.start", "job.step.start", "job.step.finish", "job.step.start", "job.step.finish", "job.succeeded"], actions.Where(a => a != "job.submit"));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_quick_step_records_its_start_with_its_end_and_a_slow_one_shows_as_running_at_once(Provider provider)
    {
        using var dir = await RunbooksAsync(("quick-slow.yaml", """
            name: quick-slow
            steps:
              - {name: quick, kind: noop}
              - {name: slow, kind: sleep, with: {duration: 5s}}
              - {name: last, kind: noop}
            """));
        // A hold of 2 s (50 ms by default), so a quick step is done within it even on a crowded machine.
        await using var server = await OpsgateServer.StartAsync(provider, [$"--Jobs:RunbookDirectory={dir.Path}", "--Jobs:StepStartHold=00:00:02"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "quick-slow");

        // The slow step is seen running while it sleeps (once the hold is over), not only once it is done.
        var running = await TestJobs.WaitAsync(server.Admin, id, j => j.Step("slow").GetProperty("status").GetString() == "running", TimeSpan.FromSeconds(15));
        Assert.Equal("running", running.Status());
        Assert.Equal(["succeeded", "running", "pending"], running.StepStatuses());

        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(20));
        Assert.Equal("succeeded", job.Status());
        foreach (var name in new[] { "quick", "slow", "last" })
            Assert.True(job.Step(name).GetProperty("started_at").GetDateTime() <= job.Step(name).GetProperty("finished_at").GetDateTime(), job.ToString());
        var events = await JobEventsTests.ReadSseAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);
        Assert.Equal(["job.created", "job.started", "step.started", "step.succeeded", "step.started", "step.succeeded", "step.started", "step.succeeded", "job.finished"],
            events.Select(e => e.Type));
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        DateTime Ts(int seq) => events[seq - 1].Data.GetProperty("ts").GetDateTime();
        // A quick step's start and end are written together (one timestamp); the slow one's start was written while it ran.
        Assert.Equal(Ts(3), Ts(4));
        Assert.True(Ts(6) - Ts(5) >= TimeSpan.FromSeconds(2), $"the slow step's start was written at {Ts(5):O}, its end at {Ts(6):O}");
        Assert.Equal(Ts(7), Ts(8));
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=100");
        var actions = audit.GetProperty("items").EnumerateArray().Where(e => e.GetProperty("job_id").GetString() == id)
            .Select(e => e.GetProperty("action").GetString()).Where(a => a != "job.submit").Reverse();
        Assert.Equal(["job.start", "job.step.start", "job.step.finish", "job.step.start", "job.step.finish", "job.step.start", "job.step.finish", "job.succeeded"], actions);
    }

    [Fact]
    public async Task A_step_that_finishes_in_spite_of_a_cancel_is_the_last_one_to_run()
    {
        using var dir = await RunbooksAsync(("stubborn.yaml", """
            name: stubborn
            steps:
              - {name: first, kind: test.stubborn}
              - {name: then, kind: noop}
            """));
        var stubborn = new StubbornStep();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"],
            services => services.AddSingleton<IStepExecutor>(stubborn));
        var id = await TestJobs.SubmitAsync(server.Admin, "stubborn");
        await TestJobs.WaitAsync(server.Admin, id, j => j.Step("first").GetProperty("status").GetString() == "running");

        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null)).StatusCode);
        await Task.Delay(200);
        stubborn.Finish.TrySetResult();
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(10));
        Assert.Equal("cancelled", job.Status());
        Assert.Equal(["succeeded", "skipped"], job.StepStatuses());
    }

    /// <summary><c>test.stubborn</c>: finishes what it started, whatever its token says, once the test lets it.</summary>
    private sealed class StubbornStep : IStepExecutor
    {
        public TaskCompletionSource Finish { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string Kind => "test.stubborn";
        public string Description => "ignores cancellation";
        public IReadOnlyList<StepInput> Inputs { get; } = [];

        public async Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken)
        {
            await Finish.Task;
            return new StepOutcome("finished anyway");
        }
    }

    [Fact]
    public async Task A_concurrency_key_that_is_one_int_parameter_is_accepted()
    {
        using var dir = await RunbooksAsync(("keyed.yaml", """
            name: keyed
            parameters:
              - {name: shard, type: int, required: true}
            options: {concurrency_key: "{{ params.shard }}"}
            steps:
              - {name: only, kind: noop}
            """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "keyed", new { shard = 3 });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());
    }

    [Fact]
    public async Task The_event_stream_of_a_retried_job_ends_at_its_last_finish_and_a_finished_stream_is_not_reopened()
    {
        using var dir = await RunbooksAsync(("gated.yaml", """
            name: gated
            steps:
              - {name: before, kind: noop}
              - {name: gate, kind: test.gate}
            """));
        var gate = new GateStep { Fail = true };
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"], gate.AddTo);
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, id)).Status());
        gate.Fail = false;
        gate.Release();
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/retry", null)).StatusCode);
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());

        var all = await JobEventsTests.ReadSseAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Id));
        Assert.Contains(all, e => e.Type == "job.retried");
        Assert.Equal(2, all.Count(e => e.Type == "job.finished"));
        Assert.Equal("job.finished", all[^1].Type);
        Assert.Equal("succeeded", all[^1].Data.GetProperty("data").GetProperty("status").GetString());
        Assert.Equal(all.Count, all[^1].Data.GetProperty("data").GetProperty("events").GetInt32());

        // A client that already has the last event (a browser's EventSource reconnects when a stream ends) is told there is no more.
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/jobs/{id}/events");
        request.Headers.Add("Last-Event-ID", all.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var response = await server.Admin.SendAsync(request, timeout.Token);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
    }
}
