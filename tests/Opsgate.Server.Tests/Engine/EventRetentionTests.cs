using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Opsgate.Server.Tests.Ansible;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Jobs:EventRetention: a finished job's events are deleted after a while, the job and its per-host results are kept, and its event stream says so.</summary>
public sealed class EventRetentionTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Events_of_an_old_job_are_pruned_and_the_stream_says_how_many_there_were_while_the_job_and_its_hosts_stay(Provider provider)
    {
        using var dir = new TempDir();
        // 700 events deleted 37 at a time: many batches, each its own transaction.
        await using var server = await EventVolumeTests.StartAsync(provider, dir, events: 700, chunk: 100, pause: 0,
            "--Jobs:EventRetention=00:00:15", "--Jobs:EventPruneInterval=00:00:00.200", "--Jobs:EventPruneBatch=37");
        var id = await EventVolumeTests.SubmitAsync(server);
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromMinutes(2))).Status());

        // Not yet: the job finished less than the retention ago (15 s: room for a slow read on a loaded machine).
        var before = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);
        var total = before.Count;
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), before.Select(e => e.Id));
        Assert.Equal(700, before.Count(e => e.Type == "ansible.runner_ok"));
        var hostsBefore = await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/hosts");

        // Then pruned: the stream is one events.pruned event with the count there was, and a header with it.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        string? header = null;
        while (header is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the events were not pruned within a minute");
            await Task.Delay(250);
            using var response = await server.Admin.GetAsync($"/api/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
            header = response.Headers.TryGetValues("Opsgate-Events-Pruned", out var values) ? values.Single() : null;
        }
        Assert.Equal(total.ToString(CultureInfo.InvariantCulture), header);
        var after = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);
        var marker = Assert.Single(after);
        Assert.Equal("events.pruned", marker.Type);
        Assert.Equal(total, marker.Id);
        Assert.Equal(total, marker.Body.GetProperty("events").GetInt32());

        // The same on the WebSocket.
        using (var ws = new ClientWebSocket())
        {
            ws.Options.SetRequestHeader("X-API-Key", OpsgateServer.AdminKey);
            await ws.ConnectAsync(new Uri(server.BaseAddress.ToString().Replace("http", "ws", StringComparison.Ordinal) + $"api/v1/jobs/{id}/events/ws"), CancellationToken.None);
            var buffer = new byte[4096];
            var received = await ws.ReceiveAsync(buffer, CancellationToken.None);
            using var message = JsonDocument.Parse(Encoding.UTF8.GetString(buffer, 0, received.Count));
            Assert.Equal("events.pruned", message.RootElement.GetProperty("type").GetString());
            Assert.Equal(total, message.RootElement.GetProperty("seq").GetInt32());
            Assert.Equal(WebSocketMessageType.Close, (await ws.ReceiveAsync(buffer, CancellationToken.None)).MessageType);
        }

        // The job, its steps and its per-host results stay.
        var job = await TestJobs.GetAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(["succeeded"], job.StepStatuses());
        Assert.Equal(hostsBefore, await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/hosts"));

        // The count grows batch by batch after the job was marked pruned, and stops at the number there were.
        long pruned;
        var counted = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while ((pruned = await PrunedTotalAsync(server)) < total && DateTime.UtcNow < counted)
            await Task.Delay(100);
        Assert.Equal(total, pruned);
    }

    private static async Task<long> PrunedTotalAsync(OpsgateServer server)
    {
        return (long)Scrape.Sum(await server.Admin.GetStringAsync("/metrics"), "opsgate_events_pruned_total{} ");
    }

    [Fact]
    public async Task A_prune_cut_short_by_a_crash_is_finished_after_the_next_start()
    {
        using var dir = new TempDir();
        using var data = new TempDir();
        string id;
        long total;
        await using (var server = await EventVolumeTests.StartAsync(Provider.Sqlite, dir, events: 300, chunk: 100, pause: 0,
            $"--DataDir={data.Path}", "--Jobs:EventRetention=0"))
        {
            id = await EventVolumeTests.SubmitAsync(server);
            await TestJobs.WaitAsync(server.Admin, id);
            // What a crash between marking the job and deleting its last batches leaves behind.
            await using var db = await server.OpenDatabaseAsync();
            await using var command = db.CreateCommand();
            command.CommandText = """
                UPDATE jobs SET events_pruned_seq = last_seq, events_pruned_at = finished_at WHERE id = $id;
                DELETE FROM job_events WHERE job_id = $id AND seq <= 100;
                SELECT last_seq FROM jobs WHERE id = $id;
                """;
            var p = command.CreateParameter();
            p.ParameterName = "$id";
            p.Value = id;
            command.Parameters.Add(p);
            total = Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }

        // The job finished a moment ago, far inside the retention: only the unfinished prune is completed.
        await using var restarted = await EventVolumeTests.StartAsync(Provider.Sqlite, dir, events: 1, chunk: 1, pause: 0,
            $"--DataDir={data.Path}", "--Jobs:EventRetention=30.00:00:00", "--Jobs:EventPruneInterval=00:00:00.100");
        var marker = Assert.Single(await SseReader.ReadAllAsync(restarted.Admin, $"/api/v1/jobs/{id}/events", null));
        Assert.Equal("events.pruned", marker.Type);
        Assert.Equal(total, marker.Body.GetProperty("events").GetInt64());
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (await CountEventsAsync(restarted, id) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the leftover events were not deleted within a minute");
            await Task.Delay(200);
        }
        var metrics = await restarted.Admin.GetStringAsync("/metrics");
        Assert.Contains($"opsgate_events_pruned_total{{}} {total - 100}", metrics, StringComparison.Ordinal);
    }

    private static async Task<long> CountEventsAsync(OpsgateServer server, string id)
    {
        await using var db = await server.OpenDatabaseAsync();
        await using var command = db.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM job_events WHERE job_id = $id";
        var p = command.CreateParameter();
        p.ParameterName = "$id";
        p.Value = id;
        command.Parameters.Add(p);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task A_retention_of_zero_keeps_events_forever_and_a_negative_one_stops_start_up()
    {
        using var dir = new TempDir();
        await using (var server = await EventVolumeTests.StartAsync(Provider.Sqlite, dir, events: 10, chunk: 10, pause: 0,
            "--Jobs:EventRetention=0", "--Jobs:EventPruneInterval=00:00:00.100"))
        {
            var id = await EventVolumeTests.SubmitAsync(server);
            await TestJobs.WaitAsync(server.Admin, id);
            // That nothing is pruned can only be shown by giving the pruner the chance: ten of its 100 ms rounds.
            await Task.Delay(1000);
            var events = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);
            Assert.Equal("job.finished", events[^1].Type);
            Assert.Equal(10, events.Count(e => e.Type == "ansible.runner_ok"));
        }
        var e = await Assert.ThrowsAnyAsync<Exception>(() => OpsgateServer.StartAsync(Provider.Sqlite, ["--Jobs:EventRetention=-1.00:00:00"]));
        Assert.Contains("Jobs:EventRetention", e.ToString(), StringComparison.Ordinal);
    }
}
