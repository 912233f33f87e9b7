using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Opsgate.Cli.Tests.Infrastructure;
using Opsgate.Client;

namespace Opsgate.Cli.Tests;

[Collection(SharedServer.Name)]
public sealed class RunTests : IDisposable
{
    private readonly CliServer _server;
    private readonly CliRunner _cli = new();

    public RunTests(CliServer server)
    {
        _server = server;
        _cli.Env["OPSGATE_SERVER"] = server.BaseAddress.ToString();
        _cli.Env["OPSGATE_KEY"] = CliServer.AdminKey;
    }

    [Fact]
    public async Task Run_follow_shows_each_step_as_it_changes_and_exits_0_when_the_job_succeeds()
    {
        var result = await _cli.RunAsync("run", "slow", "-p", "pause=150ms", "-p", "count=2", "--follow");

        Assert.True(result.Exit == 0, result.ToString());
        var lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var id = Assert.Single(Regex.Matches(lines[0], "^job/([0-9a-z]{26}) created \\(slow\\)$")).Groups[1].Value;
        // Plain lines (stdout is not a terminal): each step running, then succeeded with its duration, in order.
        var changes = lines.Skip(1).Select(l => l[14..]).ToList();
        Assert.Equal(
            ["job running", "step 1/3 first  running", "step 1/3 first  succeeded", "step 2/3 second  running", "step 2/3 second  succeeded",
             "step 3/3 third  running", "step 3/3 third  succeeded"],
            changes.Take(7).Select(c => c.Split("  ").Length > 2 ? string.Join("  ", c.Split("  ")[..2]) : c));
        // Durations come from the events' timestamps: a 150 ms pause takes at least that (more on a loaded machine).
        Assert.True(Regex.IsMatch(result.Out, @"step 1/3 first  succeeded  (0\.[1-9]|[1-9][0-9]*\.[0-9])s  waited"), result.ToString());
        Assert.True(Regex.IsMatch(result.Out, @"step 3/3 third  succeeded  [0-9.]+s  all done\n"), result.ToString());
        Assert.True(Regex.IsMatch(result.Out, $"job/{id} succeeded in (0\\.[3-9]|[1-9][0-9]*\\.[0-9])s\n$"), result.ToString());

        var job = await _server.Admin.GetJobAsync(id);
        Assert.Equal("succeeded", job.Status);
        // -p values are typed by the runbook's schema: count is an int parameter.
        Assert.Equal(2, job.Params["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task Run_follow_of_a_failing_job_exits_1_and_says_why()
    {
        var result = await _cli.RunAsync("run", "fails", "--follow");

        Assert.True(result.Exit == 1, result.ToString());
        Assert.Contains("step 1/1 call  failed", result.Out, StringComparison.Ordinal);
        Assert.Matches(@"job/[0-9a-z]{26} failed in [0-9.]+s: ", result.Out);
    }

    [Fact]
    public async Task Run_without_follow_answers_at_once_and_dry_run_and_param_file_reach_the_job()
    {
        var file = Path.Combine(_cli.Home, "params.yaml");
        await File.WriteAllTextAsync(file, "pause: 10ms\ncount: 4\n");

        var result = await _cli.RunAsync("run", "slow", "--param-file", file, "-p", "count=5", "--dry-run", "-o", "json");

        Assert.True(result.Exit == 0, result.ToString());
        var job = JsonNode.Parse(result.Out)!;
        Assert.True(job["dry_run"]!.GetValue<bool>());
        Assert.Equal("10ms", job["params"]!["pause"]!.GetValue<string>());
        Assert.Equal(5, job["params"]!["count"]!.GetValue<int>());
        Assert.Equal("succeeded", (await _server.WaitFinishedAsync(job["job_id"]!.GetValue<string>())).Status);
    }

    [Fact]
    public async Task Approve_and_reject_carry_the_comment_and_cancel_stops_a_running_job()
    {
        var operatorKey = await _server.CreateKeyAsync("op-" + Guid.NewGuid().ToString("N")[..6], "operator");
        using var asOperator = new OpsgateClient(_server.BaseAddress, operatorKey);
        var approved = await asOperator.SubmitJobAsync("gated");
        var rejected = await asOperator.SubmitJobAsync("gated");

        var approve = await _cli.RunAsync("jobs", "approve", approved.JobId, "--comment", "ok, CHG-1");
        Assert.True(approve.Exit == 0, approve.ToString());
        Assert.Equal($"job/{approved.JobId} pending\n", approve.Out);
        Assert.Equal("succeeded", (await _server.WaitFinishedAsync(approved.JobId)).Status);
        Assert.Equal("ok, CHG-1", (await _server.Admin.GetJobAsync(approved.JobId)).DecisionComment);

        var reject = await _cli.RunAsync("jobs", "reject", rejected.JobId, "-m", "not today");
        Assert.True(reject.Exit == 0, reject.ToString());
        var gone = await _server.WaitFinishedAsync(rejected.JobId);
        Assert.Equal("cancelled", gone.Status);
        Assert.Contains("not today", gone.Error, StringComparison.Ordinal);

        var again = await _cli.RunAsync("jobs", "approve", rejected.JobId);
        Assert.Equal(1, again.Exit);
        Assert.Contains("409", again.Err, StringComparison.Ordinal);

        var running = await _server.Admin.SubmitJobAsync("slow", new JsonObject { ["pause"] = "30s" });
        var cancel = await _cli.RunAsync("jobs", "cancel", running.JobId);
        Assert.True(cancel.Exit == 0, cancel.ToString());
        Assert.Equal("cancelled", (await _server.WaitFinishedAsync(running.JobId)).Status);
    }

    public void Dispose() => _cli.Dispose();
}
