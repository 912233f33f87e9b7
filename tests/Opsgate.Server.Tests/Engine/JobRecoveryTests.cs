using System.Net;
using System.Net.Http.Json;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Jobs survive a graceful restart, a changed runbook, a failed lease renewal and a lapsed lease, without a step running twice at once.</summary>
public sealed class JobRecoveryTests
{
    private const string Slow = """
        name: slow
        steps:
          - {name: first, kind: noop}
          - {name: wait, kind: sleep, with: {duration: 2s}}
          - {name: last, kind: noop}
        """;

    private const string Gated = """
        name: gated
        steps:
          - {name: gate, kind: test.gate}
        """;

    private static async Task<OpsgateServer> StartAsync(string dataDir, string runbooks, params string[] args) =>
        await OpsgateServer.StartAsync(Provider.Sqlite, [$"--DataDir={dataDir}", $"--Jobs:RunbookDirectory={runbooks}", .. args]);

    [Fact]
    public async Task A_graceful_shutdown_in_the_middle_of_a_step_runs_that_step_again_after_the_restart()
    {
        using var data = new TempDir();
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "slow.yaml"), Slow);
        string id;
        await using (var first = await StartAsync(data.Path, runbooks.Path))
        {
            id = await TestJobs.SubmitAsync(first.Admin, "slow");
            await TestJobs.WaitAsync(first.Admin, id, j => j.Step("wait").GetProperty("status").GetString() == "running");
        } // graceful stop: the step is interrupted and the lease released

        await using var second = await StartAsync(data.Path, runbooks.Path);
        var job = await TestJobs.WaitAsync(second.Admin, id);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal(["succeeded", "succeeded", "succeeded"], job.StepStatuses());
        Assert.Equal(2, job.Step("wait").GetProperty("attempts").GetInt32());
        Assert.Equal(1, job.Step("first").GetProperty("attempts").GetInt32());
        Assert.StartsWith("waited", job.Step("wait").GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_runbook_changed_between_submit_and_run_fails_the_job_with_the_reason()
    {
        using var data = new TempDir();
        using var runbooks = new TempDir();
        var file = Path.Combine(runbooks.Path, "change.yaml");
        await File.WriteAllTextAsync(file, """
            name: change
            options: {requires_approval: true}
            steps:
              - {name: one, kind: noop}
              - {name: two, kind: noop}
              - {name: three, kind: noop}
            """);
        string id, approverKey;
        await using (var first = await StartAsync(data.Path, runbooks.Path))
        {
            approverKey = (await first.CreateKeyAsync("anna", "approver")).Key;
            id = await TestJobs.SubmitAsync(first.Admin, "change");
        }
        await File.WriteAllTextAsync(file, """
            name: change
            options: {requires_approval: true}
            steps:
              - {name: only, kind: noop}
            """);

        await using var second = await StartAsync(data.Path, runbooks.Path);
        Assert.Equal(HttpStatusCode.OK, (await second.Client(approverKey).PostAsJsonAsync($"/api/v1/jobs/{id}/approve", new { comment = "ok" })).StatusCode);
        var job = await TestJobs.WaitAsync(second.Admin, id, timeout: TimeSpan.FromSeconds(15));
        Assert.Equal("failed", job.Status());
        Assert.Contains("changed since the job was submitted", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(["skipped", "skipped", "skipped"], job.StepStatuses());
    }

    /// <summary>Makes SQLite refuse lease renewals (an UPDATE of lease_expires_at that is not a claim) of <paramref name="owner"/>'s lease, or of any.</summary>
    private static async Task RefuseRenewalsAsync(OpsgateServer server, string? owner = null)
    {
        await using var db = await server.OpenDatabaseAsync();
        var whose = owner is null ? "" : $" AND OLD.lease_owner = '{owner.Replace("'", "''", StringComparison.Ordinal)}'";
        await db.ExecuteAsync($"""
            CREATE TRIGGER refuse_renewals BEFORE UPDATE OF lease_expires_at ON jobs
            WHEN NEW.attempt = OLD.attempt AND NEW.status = 'running' AND NEW.lease_expires_at > OLD.lease_expires_at{whose}
            BEGIN SELECT RAISE(ABORT, 'injected: lease renewal refused'); END
            """);
    }

    private static async Task AllowRenewalsAsync(OpsgateServer server)
    {
        await using var db = await server.OpenDatabaseAsync();
        await db.ExecuteAsync("DROP TRIGGER refuse_renewals");
    }

    private static async Task<(long Attempt, string? Owner, string? Expires)> LeaseAsync(OpsgateServer server, string id)
    {
        await using var db = await server.OpenDatabaseAsync();
        return await db.QuerySingleAsync<(long, string?, string?)>("SELECT attempt, lease_owner, lease_expires_at FROM jobs WHERE id = @id", new { id });
    }

    [Fact]
    public async Task One_failed_lease_renewal_does_not_stop_the_heartbeat()
    {
        using var data = new TempDir();
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "gated.yaml"), Gated);
        var gate = new GateStep();
        var logs = new CapturedLogs();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [$"--Jobs:RunbookDirectory={runbooks.Path}", "--Jobs:LeaseDuration=00:00:03", "--Jobs:PollInterval=00:00:00.100"],
            services => { gate.AddTo(services); logs.AddTo(services); });
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");
        await GateStep.UntilAsync(() => gate.Entered == 1, "the gate step to start");

        await RefuseRenewalsAsync(server);
        await GateStep.UntilAsync(() => logs.Entries.Any(e => e.EventId == 602 && e.Message.Contains(id, StringComparison.Ordinal)), "a failed renewal");
        await AllowRenewalsAsync(server);
        var refused = await LeaseAsync(server, id);
        await GateStep.UntilAsync(async () => string.CompareOrdinal((await LeaseAsync(server, id)).Expires, refused.Expires) > 0, "the lease to be renewed again");
        Assert.Equal(1, (await LeaseAsync(server, id)).Attempt); // renewed by its heartbeat, not taken over after it lapsed

        gate.Release();
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());
        Assert.Equal(1, gate.Entered);
    }

    [Fact]
    public async Task A_slot_whose_lease_lapsed_stops_when_another_slot_of_the_same_process_takes_the_job_over()
    {
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "gated.yaml"), Gated);
        var gate = new GateStep();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [$"--Jobs:RunbookDirectory={runbooks.Path}", "--Jobs:Workers=2", "--Jobs:LeaseDuration=00:00:01", "--Jobs:PollInterval=00:00:00.100"],
            gate.AddTo);
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");
        await GateStep.UntilAsync(() => gate.Entered == 1, "the gate step to start");

        // The first slot stalls (its renewals fail), its lease lapses and the second slot claims the job.
        await RefuseRenewalsAsync(server, (await LeaseAsync(server, id)).Owner);
        await GateStep.UntilAsync(() => gate.Entered == 2, "the second slot to take the job over");
        // The first slot must find out that it lost the job and stop its step.
        await GateStep.UntilAsync(() => gate.Cancelled == 1, "the first slot to stop its step");
        await AllowRenewalsAsync(server);

        gate.Release();
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(2, job.GetProperty("attempt").GetInt32());
        await using var db = await server.OpenDatabaseAsync();
        Assert.Equal(1, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM job_events WHERE job_id = @id AND type = 'step.succeeded'", new { id }));
    }
}
