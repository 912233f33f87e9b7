using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Live events: Server-Sent Events and WebSocket, resumed without gaps or duplicates.</summary>
public sealed class JobEventsTests
{
    private const string Steps = """
        name: steps
        steps:
          - {name: a, kind: noop}
          - {name: b, kind: sleep, with: {duration: 200ms}}
          - {name: c, kind: noop}
          - {name: d, kind: sleep, with: {duration: 200ms}}
          - {name: e, kind: noop}
        """;

    private static async Task<OpsgateServer> StartAsync(TempDir dir)
    {
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "steps.yaml"), Steps);
        return await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]);
    }

    /// <summary>Reads SSE events until <paramref name="stopAfter"/> events or the end of the stream.</summary>
    internal static async Task<List<(long Id, string Type, JsonElement Data)>> ReadSseAsync(HttpClient client, string url, long? lastEventId, int stopAfter = int.MaxValue)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is { } last)
            request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var events = new List<(long, string, JsonElement)>();
        long id = 0;
        string type = "";
        while (events.Count < stopAfter && await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
                id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
                type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
                events.Add((id, type, JsonDocument.Parse(line[6..]).RootElement.Clone()));
        }
        return events;
    }

    [Fact]
    public async Task A_client_that_reconnects_with_last_event_id_gets_exactly_what_it_missed()
    {
        using var dir = new TempDir();
        await using var server = await StartAsync(dir);
        var id = await TestJobs.SubmitAsync(server.Admin, "steps");

        var firstPart = await ReadSseAsync(server.Admin, $"/api/v1/jobs/{id}/events", null, stopAfter: 3);
        Assert.Equal([1L, 2, 3], firstPart.Select(e => e.Id));
        Assert.Equal("job.created", firstPart[0].Type);

        var rest = await ReadSseAsync(server.Admin, $"/api/v1/jobs/{id}/events", firstPart[^1].Id);
        var all = firstPart.Concat(rest).ToList();
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Id));
        Assert.Equal("job.finished", all[^1].Type);
        Assert.Equal(all.Count, all[^1].Data.GetProperty("data").GetProperty("events").GetInt32());
        Assert.Equal(5, all.Count(e => e.Type == "step.succeeded"));

        // Asking again after the end replays from the requested point.
        var replay = await ReadSseAsync(server.Admin, $"/api/v1/jobs/{id}/events?after={all.Count - 2}", null);
        Assert.Equal([all.Count - 1L, all.Count], replay.Select(e => e.Id));
    }

    [Fact]
    public async Task The_websocket_stream_carries_the_same_events()
    {
        using var dir = new TempDir();
        await using var server = await StartAsync(dir);
        var id = await TestJobs.SubmitAsync(server.Admin, "steps");

        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("X-API-Key", OpsgateServer.AdminKey);
        var uri = new UriBuilder(server.BaseAddress) { Scheme = "ws", Path = $"/api/v1/jobs/{id}/events/ws", Query = "after=1" }.Uri;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.ConnectAsync(uri, timeout.Token);
        var seqs = new List<long>();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close)
                break;
            using var message = JsonDocument.Parse(Encoding.UTF8.GetString(buffer, 0, result.Count));
            seqs.Add(message.RootElement.GetProperty("seq").GetInt64());
            if (message.RootElement.GetProperty("type").GetString() == "job.finished")
                Assert.Equal(seqs[^1], message.RootElement.GetProperty("data").GetProperty("events").GetInt64());
        }
        Assert.Equal(Enumerable.Range(2, seqs.Count).Select(i => (long)i), seqs);
    }

    [Fact]
    public async Task Unknown_jobs_and_bad_positions_are_refused()
    {
        using var dir = new TempDir();
        await using var server = await StartAsync(dir);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/jobs/01jabcdefghjkmnpqrstvwxyz0/events"), System.Net.HttpStatusCode.NotFound);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/jobs/..%2Fetc/events"), System.Net.HttpStatusCode.BadRequest);
        var id = await TestJobs.SubmitAsync(server.Admin, "steps");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/jobs/{id}/events");
        request.Headers.Add("Last-Event-ID", "yesterday");
        await Problem.AssertAsync(await server.Admin.SendAsync(request), System.Net.HttpStatusCode.BadRequest);
    }
}
