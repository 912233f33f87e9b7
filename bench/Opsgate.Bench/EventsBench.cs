using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Opsgate.Bench;

/// <param name="PersistedPerSecond">Events committed after the first batch / (commit ts of the last batch - of the first), server clock.</param>
/// <param name="DeliveredPerSecond">The slowest SSE client's ansible events / (its last one received - its first), or NaN without clients.</param>
/// <param name="Failure">Why the run does not count: a client missed an event, the end event's count was wrong, the job failed.</param>
internal sealed record EventsMeasurement(
    string Database, string Source, int Clients, long Events, double PersistedPerSecond, double DeliveredPerSecond, double EndToEndSeconds,
    double ServerCpuMicrosPerEvent, double PipePerSecond, double RawInsertPerSecond, string? Failure)
{
    public const double Target = 100_000;

    public string Verdict => Failure is not null ? "FAILED"
        : PersistedPerSecond >= Target && (Clients == 0 || DeliveredPerSecond >= Target) ? "met" : "missed";

    public static void Table(TextWriter o, IEnumerable<EventsMeasurement> all)
    {
        o.WriteLine("| database | source | SSE clients | events | persisted ev/s | delivered ev/s (slowest client) | submit→all clients done s | server CPU µs/event | baseline: pipe ev/s | baseline: bare insert ev/s | persisted / bare insert | target ≥100,000 ev/s |");
        o.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var m in all)
        {
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {m.Database} | {m.Source} | {m.Clients} | {m.Events:N0} | {m.PersistedPerSecond:N0} | {(m.Clients == 0 ? "-" : m.DeliveredPerSecond.ToString("N0", CultureInfo.InvariantCulture))} | " +
                $"{m.EndToEndSeconds:0.00} | {m.ServerCpuMicrosPerEvent:0.0} | {m.PipePerSecond:N0} | {m.RawInsertPerSecond:N0} | {m.PersistedPerSecond / m.RawInsertPerSecond:0.00} | {m.Verdict}{(m.Failure is null ? "" : ": " + m.Failure)} |"));
        }
    }
}

/// <summary>
/// The events scenario (issue 5, "Event ingestion"): the server's real ingestion path, end to end. The server runs
/// bench/events/producer.py as its <c>Ansible:PlaybookCommand</c>, exactly as it runs ansible-playbook (setsid,
/// scrubbed environment, private run dir, the run's event socket); the producer feeds that socket pre-built JSON
/// lines as fast as it can: synthetic runner_ok events, or a replay of real callback output recorded from a real
/// ansible-playbook run (bench/events/callback.jsonl). Nothing in the server exists for the benchmark. Each run is
/// one job of the built-in ansible-playbook runbook, with 0 or 10 SSE clients reading /events from before the first
/// event; every client must get every seq in order, and the job.finished event's count must equal the last seq.
/// Baselines, measured in the same run: the pipe (the producer into a Unix socket that only counts lines) and a bare
/// insert loop of the same number of rows into the same database (SQLite: one prepared INSERT reused, 1000 rows per
/// transaction, WAL, synchronous=NORMAL as the server; PostgreSQL: binary COPY, 1000 rows per transaction).
/// </summary>
internal static class EventsBench
{
    public const int Clients = 10;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(5);

    public static string Describe(BenchOptions options) =>
        $"events: {options.Events:N0} events per run through the real ingestion path (bench/events/producer.py as Ansible:PlaybookCommand), " +
        $"synthetic and replayed real callback output, with 0 and {Clients} live SSE clients; baselines: the pipe alone, and a bare insert loop of as many rows";

    public static async Task<List<EventsMeasurement>> RunAsync(BenchOptions options, TextWriter o, HttpClient http, CancellationToken ct)
    {
        var root = RepositoryRoot();
        var producer = Path.Combine(root, "bench", "events", "producer.py");
        var recorded = Path.Combine(root, "bench", "events", "callback.jsonl");
        var dir = Directory.CreateTempSubdirectory("opsgate-bench-events-");
        try
        {
            var specs = new Dictionary<string, string>
            {
                ["synthetic"] = JsonSerializer.Serialize(new { source = "synthetic", events = options.Events, delay = 1.0 }),
                ["replay"] = JsonSerializer.Serialize(new { source = "replay", file = recorded, events = options.Events, delay = 1.0 }),
            };
            foreach (var (name, spec) in specs)
                await File.WriteAllTextAsync(Path.Combine(dir.FullName, name + ".yml"), spec, ct);

            var pipe = await PipeRateAsync(producer, Path.Combine(dir.FullName, "synthetic.yml"), dir.FullName, ct);
            var raw = await RawInsertRateAsync(options, recorded, dir.FullName, ct);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"events baselines: pipe {pipe:N0} events/s, bare insert loop {raw:N0} rows/s ({options.DatabaseName})"));

            await using var server = await ServerProcess.StartAsync(options, http, ct,
                "--Ansible:PlaybookCommand=" + producer, "--Ansible:PlaybookDirectory=" + dir.FullName);
            o.WriteLine($"events: server pid {server.ProcessId} at {server.BaseAddress}");
            using var sse = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64, UseProxy = false }) { Timeout = Timeout.InfiniteTimeSpan };
            sse.DefaultRequestHeaders.Add("X-API-Key", server.AdminKey);
            // Warm-up: the first run JITs the whole path.
            await RunOneAsync(sse, server, "synthetic", Math.Min(options.Events, 20_000), 2, ct);

            var results = new List<EventsMeasurement>();
            foreach (var source in specs.Keys)
            {
                foreach (var clients in new[] { 0, Clients })
                {
                    var r = await RunOneAsync(sse, server, source, options.Events, clients, ct);
                    var micros = r.ServerCpu.TotalMicroseconds / r.Events;
                    var m = new EventsMeasurement(options.DatabaseName, source, clients, r.Events, r.Persisted, r.Delivered, r.Seconds, micros, pipe, raw, r.Failure);
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"events {source}, {clients} clients: {r.Events:N0} events, persisted {r.Persisted:N0}/s, delivered (slowest client) {r.Delivered:N0}/s, {r.Seconds:0.00} s submit→done, server CPU {micros:0.0} µs/event, {r.Batches:N0} batches (distinct commit timestamps){(r.Failure is null ? "" : ", FAILED: " + r.Failure)}"));
                    results.Add(m);
                }
            }
            return results;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private sealed record Run(long Events, double Persisted, double Delivered, double Seconds, TimeSpan ServerCpu, int Batches, string? Failure);

    private static async Task<Run> RunOneAsync(HttpClient http, ServerProcess process, string source, long events, int clients, CancellationToken ct)
    {
        var server = process.BaseAddress;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(RunTimeout);
        // The producer ignores the inventory, but the job type takes a stored one (each run adds a version; outside the timing).
        var inventory = JsonSerializer.Serialize(new { name = "bench-events", hosts = "all:\n  hosts:\n    bench:\n" });
        using (var stored = await http.PostAsync(new Uri(server, "api/v1/inventories"), new StringContent(inventory, Encoding.UTF8, "application/json"), limit.Token))
        {
            if (stored.StatusCode != HttpStatusCode.Created)
                throw new BenchException($"POST /api/v1/inventories answered {(int)stored.StatusCode}: {await stored.Content.ReadAsStringAsync(limit.Token)}");
        }
        var cpuBefore = process.CpuTime();
        var started = Stopwatch.GetTimestamp();
        var body = JsonSerializer.Serialize(new { type = "ansible-playbook", @params = new { playbook = source + ".yml", inventory = "bench-events" } });
        using var submitted = await http.PostAsync(new Uri(server, "api/v1/jobs"), new StringContent(body, Encoding.UTF8, "application/json"), limit.Token);
        if (submitted.StatusCode != HttpStatusCode.Created)
            throw new BenchException($"POST /api/v1/jobs answered {(int)submitted.StatusCode}: {await submitted.Content.ReadAsStringAsync(limit.Token)}");
        using var doc = JsonDocument.Parse(await submitted.Content.ReadAsStringAsync(limit.Token));
        var id = doc.RootElement.GetProperty("job_id").GetString()!;
        var readers = Enumerable.Range(0, clients).Select(_ => SseClient.ReadAsync(http, new Uri(server, $"api/v1/jobs/{id}/events"), limit.Token)).ToList();
        var reads = await Task.WhenAll(readers);
        var status = await WaitFinishedAsync(http, server, id, limit.Token);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = process.CpuTime() - cpuBefore;

        // The commit timestamps, read back once afterwards.
        var all = await SseClient.ReadAsync(http, new Uri(server, $"api/v1/jobs/{id}/events"), limit.Token, keepTimestamps: true);
        var failures = new List<string>();
        if (status != "succeeded")
            failures.Add($"the job is {status}");
        foreach (var r in reads.Append(all).Where(r => r.Failure is not null))
            failures.Add(r.Failure!);
        var persisted = all.Timestamps.Count < 2 ? double.NaN
            : all.Timestamps.Count(t => t > all.Timestamps[0]) / (all.Timestamps[^1] - all.Timestamps[0]).TotalSeconds;
        var delivered = reads.Length == 0 ? double.NaN : reads.Min(r => r.PerSecond);
        if (all.AnsibleEvents < events)
            failures.Add($"{all.AnsibleEvents} of {events} events were stored");
        var batches = all.Timestamps.Distinct().Count();
        return new Run(all.AnsibleEvents, persisted, delivered, seconds, cpu, batches, failures.Count == 0 ? null : string.Join("; ", failures.Distinct()));
    }

    private static async Task<string> WaitFinishedAsync(HttpClient http, Uri server, string id, CancellationToken ct)
    {
        while (true)
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri(server, $"api/v1/jobs/{id}"), ct));
            var status = doc.RootElement.GetProperty("status").GetString()!;
            if (status is "succeeded" or "failed" or "cancelled")
                return status;
            await Task.Delay(100, ct);
        }
    }

    /// <summary>The producer into a Unix socket whose reader only counts lines: the most the pipe itself carries here.</summary>
    private static async Task<double> PipeRateAsync(string producer, string spec, string dir, CancellationToken ct)
    {
        var path = Path.Combine(dir, "pipe.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var psi = new ProcessStartInfo(producer) { UseShellExecute = false, RedirectStandardOutput = true };
        psi.ArgumentList.Add(spec);
        psi.Environment["OPSGATE_EVENTS_SOCKET"] = path;
        using var process = Process.Start(psi) ?? throw new BenchException("could not start the producer");
        using var connection = await listener.AcceptAsync(ct);
        var start = Stopwatch.GetTimestamp();
        long lines = 0;
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await connection.ReceiveAsync(buffer, SocketFlags.None, ct)) > 0)
            lines += buffer.AsSpan(0, n).Count((byte)'\n');
        var rate = lines / Stopwatch.GetElapsedTime(start).TotalSeconds;
        await process.WaitForExitAsync(ct);
        return rate;
    }

    /// <summary>As many rows as a run writes, with the recorded callback output as data, inserted by the simplest fast loop.</summary>
    private static async Task<double> RawInsertRateAsync(BenchOptions options, string recorded, string dir, CancellationToken ct)
    {
        var data = (await File.ReadAllLinesAsync(recorded, ct)).Where(l => l.Length > 0).ToArray();
        var n = options.Events;
        var ts = DateTime.UtcNow;
        const int PerTransaction = 1000;
        if (options.PostgresConnectionString is { } cs)
        {
            await using var pg = new Npgsql.NpgsqlConnection(cs);
            await pg.OpenAsync(ct);
            await using (var create = new Npgsql.NpgsqlCommand(
                "DROP TABLE IF EXISTS bench_events; CREATE TABLE bench_events (job_id TEXT NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMPTZ NOT NULL, type TEXT NOT NULL, step_order INTEGER NULL, data TEXT NULL, PRIMARY KEY (job_id, seq))", pg))
                await create.ExecuteNonQueryAsync(ct);
            var start = Stopwatch.GetTimestamp();
            for (long first = 0; first < n; first += PerTransaction)
            {
                await using var tx = await pg.BeginTransactionAsync(ct);
                await using (var copy = await pg.BeginBinaryImportAsync("COPY bench_events (job_id, seq, ts, type, step_order, data) FROM STDIN (FORMAT BINARY)", ct))
                {
                    for (var seq = first; seq < Math.Min(n, first + PerTransaction); seq++)
                    {
                        await copy.StartRowAsync(ct);
                        await copy.WriteAsync("01bench", NpgsqlTypes.NpgsqlDbType.Text, ct);
                        await copy.WriteAsync(seq + 1, NpgsqlTypes.NpgsqlDbType.Bigint, ct);
                        await copy.WriteAsync(ts, NpgsqlTypes.NpgsqlDbType.TimestampTz, ct);
                        await copy.WriteAsync("ansible.runner_ok", NpgsqlTypes.NpgsqlDbType.Text, ct);
                        await copy.WriteAsync(1, NpgsqlTypes.NpgsqlDbType.Integer, ct);
                        await copy.WriteAsync(data[seq % data.Length], NpgsqlTypes.NpgsqlDbType.Text, ct);
                    }
                    await copy.CompleteAsync(ct);
                }
                await tx.CommitAsync(ct);
            }
            var rate = n / Stopwatch.GetElapsedTime(start).TotalSeconds;
            await using (var drop = new Npgsql.NpgsqlCommand("DROP TABLE bench_events", pg))
                await drop.ExecuteNonQueryAsync(ct);
            return rate;
        }
        await using (var sqlite = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "raw.db")};Pooling=false"))
        {
            await sqlite.OpenAsync(ct);
            await using (var setup = sqlite.CreateCommand())
            {
                setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; " +
                    "CREATE TABLE job_events (job_id TEXT NOT NULL, seq BIGINT NOT NULL, ts TEXT NOT NULL, type TEXT NOT NULL, step_order INTEGER NULL, data TEXT NULL, PRIMARY KEY (job_id, seq))";
                await setup.ExecuteNonQueryAsync(ct);
            }
            var start = Stopwatch.GetTimestamp();
            for (long first = 0; first < n; first += PerTransaction)
            {
                await using var tx = (Microsoft.Data.Sqlite.SqliteTransaction)await sqlite.BeginTransactionAsync(ct);
                await using var insert = sqlite.CreateCommand();
                insert.Transaction = tx;
                insert.CommandText = "INSERT INTO job_events (job_id, seq, ts, type, step_order, data) VALUES ('01bench', @seq, @ts, 'ansible.runner_ok', 1, @data)";
                var seqParameter = insert.Parameters.Add("@seq", Microsoft.Data.Sqlite.SqliteType.Integer);
                insert.Parameters.AddWithValue("@ts", ts);
                var dataParameter = insert.Parameters.Add("@data", Microsoft.Data.Sqlite.SqliteType.Text);
                await insert.PrepareAsync(ct);
                for (var seq = first; seq < Math.Min(n, first + PerTransaction); seq++)
                {
                    seqParameter.Value = seq + 1;
                    dataParameter.Value = data[seq % data.Length];
                    await insert.ExecuteNonQueryAsync(ct);
                }
                await tx.CommitAsync(ct);
            }
            return n / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Opsgate.slnx")))
                return dir.FullName;
        }
        throw new BenchException("cannot find the repository root (Opsgate.slnx) above this program, for bench/events/");
    }
}

/// <summary>
/// One SSE reader that checks what it gets: seqs 1, 2, 3, ... without a gap or repeat, and a last job.finished whose
/// <c>events</c> equals its seq. It parses only the <c>id:</c> and <c>event:</c> lines (and the data of job.finished,
/// or with <c>keepTimestamps</c> the ts of every ansible event), so the client costs little of the shared CPU.
/// </summary>
internal static class SseClient
{
    public sealed record Result(long AnsibleEvents, double PerSecond, List<DateTime> Timestamps, string? Failure);

    public static async Task<Result> ReadAsync(HttpClient http, Uri url, CancellationToken ct, bool keepTimestamps = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
            return new Result(0, double.NaN, [], $"GET events answered {(int)response.StatusCode}");
        var pipe = PipeReader.Create(await response.Content.ReadAsStreamAsync(ct));
        long expected = 1, last = 0, ansible = 0, firstAt = 0, lastAt = 0;
        long? endCount = null;
        string? failure = null;
        var type = "";
        var timestamps = new List<DateTime>();
        while (true)
        {
            var read = await pipe.ReadAsync(ct);
            var buffer = read.Buffer;
            while (buffer.PositionOf((byte)'\n') is { } end)
            {
                var line = buffer.Slice(0, end);
                buffer = buffer.Slice(buffer.GetPosition(1, end));
                var span = line.IsSingleSegment ? line.FirstSpan : line.ToArray();
                if (span.StartsWith("id: "u8))
                {
                    if (!Utf8Parser.TryParse(span[4..], out long seq, out _))
                        seq = -1;
                    if (seq != expected && failure is null)
                        failure = $"got seq {seq} where {expected} was due";
                    expected = seq + 1;
                    last = seq;
                }
                else if (span.StartsWith("event: "u8))
                {
                    type = span[7..].StartsWith("ansible."u8) && !span[7..].SequenceEqual("ansible.output"u8) && !span[7..].SequenceEqual("ansible.summary"u8)
                        ? "ansible" : Encoding.UTF8.GetString(span[7..]);
                    if (type == "ansible")
                    {
                        ansible++;
                        lastAt = Stopwatch.GetTimestamp();
                        if (firstAt == 0)
                            firstAt = lastAt;
                    }
                }
                else if (span.StartsWith("data: "u8) && (type == "job.finished" || keepTimestamps && type == "ansible"))
                {
                    using var doc = JsonDocument.Parse(span[6..].ToArray());
                    if (type == "job.finished")
                        endCount = doc.RootElement.GetProperty("data").TryGetProperty("events", out var e) ? e.GetInt64() : -1;
                    else
                        timestamps.Add(doc.RootElement.GetProperty("ts").GetDateTime());
                }
            }
            if (read.IsCompleted)
                break;
            pipe.AdvanceTo(buffer.Start, buffer.End);
        }
        await pipe.CompleteAsync();
        if (endCount is null)
            failure ??= "the stream ended without job.finished";
        else if (endCount != last)
            failure ??= $"job.finished says {endCount} events, the last seq received was {last}";
        var seconds = (lastAt - firstAt) / (double)Stopwatch.Frequency;
        return new Result(ansible, ansible > 1 ? (ansible - 1) / seconds : double.NaN, timestamps, failure);
    }
}
