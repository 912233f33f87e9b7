using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// Live events at volume, through the real ingestion path: the server runs a stand-in for ansible-playbook (its
/// Ansible:PlaybookCommand) that feeds the run's event socket tens of thousands of callback lines, as the plugin does
/// on a large run. A client that stops reading does not hold the run up and later gets every event; a reconnecting
/// client gets exactly the rest; the end event's count is the number of events.
/// </summary>
public sealed class EventVolumeTests
{
    // Reads its "playbook" (JSON: events, chunk, pause) and writes that many runner_ok lines to the event socket,
    // `chunk` lines at a time with `pause` seconds between chunks.
    private const string Producer = """
        #!/usr/bin/python3
        import json, os, socket, sys, time
        spec = json.load(open(sys.argv[1]))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.environ['OPSGATE_EVENTS_SOCKET'])
        if 'lines' in spec:
            s.sendall('\n'.join(spec['lines']).encode())
            sys.exit(0)
        seq = 0
        while seq < spec['events']:
            lines = []
            for _ in range(min(spec['chunk'], spec['events'] - seq)):
                seq += 1
                lines.append('{"host":"web%04d","task":"t%d","changed":%s,"seq":%d,"event":"runner_ok"}\n' % (seq % 500, seq // 500, 'true' if seq % 7 == 0 else 'false', seq))
            s.sendall(''.join(lines).encode())
            time.sleep(spec['pause'])
        s.close()
        """;

    internal static Task<OpsgateServer> StartAsync(Provider provider, TempDir dir, int events, int chunk, double pause, params string[] settings) =>
        StartAsync(provider, dir, new { events, chunk, pause }, settings);

    private static async Task<OpsgateServer> StartAsync(Provider provider, TempDir dir, object spec, params string[] settings)
    {
        var producer = Path.Combine(dir.Path, "producer.py");
        await File.WriteAllTextAsync(producer, Producer);
        File.SetUnixFileMode(producer, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "run.yml"), JsonSerializer.Serialize(spec));
        return await OpsgateServer.StartAsync(provider, [$"--Ansible:PlaybookCommand={producer}", $"--Ansible:PlaybookDirectory={dir.Path}", .. settings]);
    }

    internal static async Task<string> SubmitAsync(OpsgateServer server) =>
        await TestJobs.SubmitAsync(server.Admin, "ansible-playbook",
            new { playbook = "run.yml", inventory = await AnsibleFixture.StoreInventoryAsync(server.Admin, "all:\n  hosts:\n    web0001:\n") });

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_client_that_stops_reading_does_not_hold_up_the_run_and_later_gets_every_event_in_order(Provider provider)
    {
        const int Events = 80_000; // some 25 MB of SSE: far more than a socket buffers, and over twice a client's live buffer
        using var dir = new TempDir();
        await using var server = await StartAsync(provider, dir, Events, chunk: 2_000, pause: 0.02);
        var id = await SubmitAsync(server);

        using var slowClient = new HttpClient { BaseAddress = server.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        slowClient.DefaultRequestHeaders.Add("X-API-Key", OpsgateServer.AdminKey);
        await using var slow = await SseReader.OpenAsync(slowClient, $"/api/v1/jobs/{id}/events");
        var slowFirst = await slow.ReadAsync(max: 1);
        var normal = SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);

        // The run ends while the slow client reads nothing: the server never waits for it.
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromMinutes(3));
        Assert.Equal("succeeded", job.Status());

        var rest = await slow.ReadAsync(max: int.MaxValue);
        var slowAll = slowFirst.Concat(rest).ToList();
        var normalAll = await normal;
        foreach (var events in new[] { slowAll, normalAll })
        {
            Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
            Assert.Equal(Events, events.Count(e => e.Type == "ansible.runner_ok"));
            Assert.Equal("job.finished", events[^1].Type);
            Assert.Equal(events.Count, events[^1].Data.GetProperty("data").GetProperty("events").GetInt32());
        }
        // Each runner_ok carries the plugin's own counter: all of them, in the order ansible sent them.
        Assert.Equal(Enumerable.Range(1, Events).Select(i => (long)i),
            slowAll.Where(e => e.Type == "ansible.runner_ok").Select(e => e.Data.GetProperty("data").GetProperty("ansible_seq").GetInt64()));
    }

    [Fact]
    public async Task A_client_that_reconnects_mid_run_with_last_event_id_gets_exactly_the_rest()
    {
        const int Events = 20_000;
        using var dir = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, dir, Events, chunk: 500, pause: 0.05);
        var id = await SubmitAsync(server);

        List<SseEvent> first;
        await using (var reader = await SseReader.OpenAsync(server.Admin, $"/api/v1/jobs/{id}/events"))
            first = await reader.ReadAsync(max: 3_000);
        Assert.Equal("running", (await TestJobs.GetAsync(server.Admin, id)).Status()); // mid-run, not after the end

        var rest = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", first[^1].Id);
        var all = first.Concat(rest).ToList();
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Id));
        Assert.Equal(Events, all.Count(e => e.Type == "ansible.runner_ok"));
        Assert.Equal("job.finished", all[^1].Type);
        Assert.Equal(all.Count, all[^1].Data.GetProperty("data").GetProperty("events").GetInt32());

        // ?after= is the same position as Last-Event-ID.
        var tail = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events?after={all.Count - 10}", null);
        Assert.Equal(Enumerable.Range(all.Count - 9, 10).Select(i => (long)i), tail.Select(e => e.Id));
    }

    [Fact]
    public async Task Callback_lines_are_kept_as_sent_and_lines_that_are_not_events_are_counted_not_stored()
    {
        string[] lines =
        [
            """{"host":"web1","task":"t","changed":true,"seq":1,"event":"runner_ok","step":"spoofed","nested":{"a":[1,{"b":"\u00e9\n"}]},"message":"caf\u00e9","n":-1.5e3}""",
            "not json",
            "[1,2]",
            """{"host":"web1"}""",
            """{"event":5,"host":"web1"}""",
            """{"event":"runner_ok","host":"web1"} trailing""",
            """{"host":"web2","changed":false,"seq":2,"event":"runner_skipped"}""", // the last line, without its newline
        ];
        using var dir = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, dir, new { lines });
        var id = await SubmitAsync(server);
        await TestJobs.WaitAsync(server.Admin, id);
        var events = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);

        var ok = Assert.Single(events, e => e.Type == "ansible.runner_ok").Body;
        Assert.Equal("web1", ok.GetProperty("host").GetString());
        Assert.Equal(1, ok.GetProperty("ansible_seq").GetInt32());
        Assert.Equal("playbook", ok.GetProperty("step").GetString()); // the step's name, whatever the line said
        Assert.Equal("é\n", ok.GetProperty("nested").GetProperty("a")[1].GetProperty("b").GetString());
        Assert.Equal("café", ok.GetProperty("message").GetString());
        Assert.Equal(-1500, ok.GetProperty("n").GetDouble());
        Assert.False(ok.TryGetProperty("event", out _));
        Assert.False(ok.TryGetProperty("seq", out _));
        Assert.Equal("web2", Assert.Single(events, e => e.Type == "ansible.runner_skipped").Body.GetProperty("host").GetString());
        Assert.Equal(5, Assert.Single(events, e => e.Type == "ansible.truncated").Body.GetProperty("malformed_callback_lines").GetInt32());

        var hosts = await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/hosts");
        Assert.Contains("web1", hosts, StringComparison.Ordinal);
        Assert.Contains("web2", hosts, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_callback_line_over_8_MiB_is_skipped_and_counted_as_malformed_and_the_lines_around_it_are_events()
    {
        // A well-formed event, were it read: only its length stops it.
        var huge = """{"host":"huge","task":"t","changed":false,"seq":2,"event":"runner_ok","message":"%"}""".Replace("%", new string('x', 9 * 1024 * 1024), StringComparison.Ordinal);
        string[] lines =
        [
            """{"host":"web1","task":"t","changed":false,"seq":1,"event":"runner_ok"}""",
            huge,
            """{"host":"web2","task":"t","changed":false,"seq":3,"event":"runner_ok"}""",
        ];
        using var dir = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, dir, new { lines });
        var id = await SubmitAsync(server);
        await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromMinutes(2));
        var events = await SseReader.ReadAllAsync(server.Admin, $"/api/v1/jobs/{id}/events", null);

        Assert.Equal(["web1", "web2"], events.Where(e => e.Type == "ansible.runner_ok").Select(e => e.Body.GetProperty("host").GetString()));
        Assert.Equal(1, Assert.Single(events, e => e.Type == "ansible.truncated").Body.GetProperty("malformed_callback_lines").GetInt32());
    }
}

/// <summary>An SSE stream read only when asked, so a test can leave it unread for a while.</summary>
internal sealed class SseReader : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseReader(HttpResponseMessage response, StreamReader reader)
    {
        _response = response;
        _reader = reader;
    }

    public static async Task<SseReader> OpenAsync(HttpClient client, string url, long? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is { } last)
            request.Headers.Add("Last-Event-ID", last.ToString(CultureInfo.InvariantCulture));
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return new SseReader(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
    }

    public static async Task<List<SseEvent>> ReadAllAsync(HttpClient client, string url, long? lastEventId)
    {
        await using var reader = await OpenAsync(client, url, lastEventId);
        return await reader.ReadAsync(int.MaxValue);
    }

    /// <summary>Up to <paramref name="max"/> events, or until the stream ends.</summary>
    public async Task<List<SseEvent>> ReadAsync(int max)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var events = new List<SseEvent>();
        long id = 0;
        var type = "";
        while (events.Count < max && await _reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
                id = long.Parse(line[4..], CultureInfo.InvariantCulture);
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
                type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
                events.Add(new SseEvent(id, type, JsonDocument.Parse(line[6..]).RootElement.Clone()));
        }
        return events;
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}
