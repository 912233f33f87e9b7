using System.Text.Json.Nodes;
using Opsgate.Cli.Tests.Infrastructure;
using Opsgate.Client;

namespace Opsgate.Cli.Tests;

[Collection(SharedServer.Name)]
public sealed class EventsTests(CliServer server) : IDisposable
{
    private readonly CliRunner _cli = new();

    [Fact]
    public async Task Events_follow_resumes_after_the_connection_drops_without_gaps_or_repeats()
    {
        await using var proxy = new DroppingProxy(server.BaseAddress);
        _cli.Env["OPSGATE_SERVER"] = proxy.Address.ToString();
        _cli.Env["OPSGATE_KEY"] = CliServer.AdminKey;
        var job = await server.Admin.SubmitJobAsync("slow", new JsonObject { ["pause"] = "400ms" });

        var following = _cli.RunAsync("jobs", "events", job.JobId, "--follow", "-o", "json");
        // Cut the stream once the first events are through and the job is still running.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!(_cli.LiveOut?.ToString() ?? "").Contains("job.started", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "no event arrived through the proxy");
            await Task.Delay(10);
        }
        Assert.False((await server.Admin.GetJobAsync(job.JobId)).IsFinished);
        proxy.DropAll();
        var result = await following;

        Assert.True(result.Exit == 0, result.ToString());
        Assert.Contains("reconnecting after seq", result.Err, StringComparison.Ordinal);
        Assert.True(proxy.Accepted >= 2, $"{proxy.Accepted} connections");
        var events = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        var seqs = events.Select(e => e["seq"]!.GetValue<long>()).ToList();
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        Assert.Equal("job.finished", events[^1]["type"]!.GetValue<string>());
        Assert.Equal(seqs.Count, events[^1]["data"]!["events"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_client_stream_resumes_from_a_seq_and_ends_at_once_for_a_finished_job()
    {
        var job = await server.Admin.SubmitJobAsync("noop");
        await server.WaitFinishedAsync(job.JobId);

        var all = new List<JobEvent>();
        await foreach (var e in server.Admin.StreamJobEventsAsync(job.JobId))
            all.Add(e);
        var tail = new List<JobEvent>();
        await foreach (var e in server.Admin.StreamJobEventsAsync(job.JobId, after: 2))
            tail.Add(e);
        var none = new List<JobEvent>();
        await foreach (var e in server.Admin.StreamJobEventsAsync(job.JobId, after: all[^1].Seq))
            none.Add(e);

        Assert.Equal("job.created", all[0].Type);
        Assert.Equal(all.Skip(2).Select(e => e.Seq), tail.Select(e => e.Seq));
        Assert.Empty(none);

        var plain = await _cli.RunWith(server, "jobs", "events", job.JobId);
        Assert.True(plain.Exit == 0, plain.ToString());
        Assert.Matches(@"(?m)^1\s+\d\d:\d\d:\d\d\.\d{3} job\.created", plain.Out);
        Assert.Matches(@"(?m)^\d+\s+\S+ job\.finished\s+\{""status"":""succeeded""", plain.Out);
    }

    public void Dispose() => _cli.Dispose();
}

internal static class CliExtensions
{
    public static Task<CliResult> RunWith(this CliRunner cli, CliServer server, params string[] args)
    {
        cli.Env["OPSGATE_SERVER"] = server.BaseAddress.ToString();
        cli.Env["OPSGATE_KEY"] = CliServer.AdminKey;
        return cli.RunAsync(args);
    }
}
