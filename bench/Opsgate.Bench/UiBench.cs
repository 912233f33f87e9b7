using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Opsgate.Bench;

/// <summary>The web console's figures (issue 18); each beside a baseline taken on the same server in the same run.</summary>
/// <param name="ListApiMs">Baseline: GET /api/v1/jobs?limit=50 (the API's first page, JSON, API key).</param>
/// <param name="ListPageMs">GET /jobs pages (first page and filtered ones, 50 jobs each) with the session cookie: the server's time plus loopback.</param>
/// <param name="SignInFcpMs">Baseline: first contentful paint of the sign-in page (no data) in Chromium.</param>
/// <param name="ListFcpMs">First contentful paint of the jobs list in Chromium.</param>
/// <param name="JobPageFcpMs">First contentful paint of a job page whose log holds <paramref name="Events"/> events.</param>
/// <param name="EventsInPage">How many events that page holds when opened (the rest are a link away).</param>
/// <param name="SseLatencyMs">Baseline: from an event's commit time stamp to its arrival at a plain SSE client (HttpClient).</param>
/// <param name="PageLatencyMs">The same events' arrival in the open job page's log, in Chromium.</param>
internal sealed record UiMeasurement(
    string Database, int Jobs, double[] ListApiMs, double[] ListPageMs, double[] SignInFcpMs, double[] ListFcpMs,
    int Events, double[] JobPageFcpMs, int EventsInPage, double[] SseLatencyMs, double[] PageLatencyMs, string? Failure)
{
    public const double ListP50Ms = 50, ListFcpMs1 = 1000, JobFcpMs = 1500, LatencyP50Ms = 300;

    public static void Table(TextWriter o, IReadOnlyList<UiMeasurement> measurements)
    {
        o.WriteLine("| database | what | baseline p50 | p50 | p90 | ratio p50 | target | result |");
        o.WriteLine("|---|---|---:|---:|---:|---:|---|---|");
        foreach (var m in measurements)
        {
            Row(o, m, $"jobs list page, {m.Jobs:N0} jobs (ms; baseline API page)", m.ListApiMs, m.ListPageMs, $"p50 < {ListP50Ms} ms", ListP50Ms);
            Row(o, m, "jobs list first contentful paint (ms; baseline sign-in page)", m.SignInFcpMs, m.ListFcpMs, $"< {ListFcpMs1} ms", ListFcpMs1);
            Row(o, m, $"job page with {m.Events:N0} events, FCP (ms; baseline sign-in page); {m.EventsInPage} events in the page", m.SignInFcpMs, m.JobPageFcpMs, $"< {JobFcpMs} ms", JobFcpMs);
            Row(o, m, "event commit to job page (ms; baseline plain SSE client)", m.SseLatencyMs, m.PageLatencyMs, $"p50 < {LatencyP50Ms} ms", LatencyP50Ms);
        }
        foreach (var f in measurements.Where(m => m.Failure is not null))
            o.WriteLine($"ui FAILED: {f.Failure}");
    }

    private static void Row(TextWriter o, UiMeasurement m, string what, double[] baseline, double[] values, string target, double limit)
    {
        var (b50, v50, v90) = (Percentile(baseline, 0.5), Percentile(values, 0.5), Percentile(values, 0.9));
        var verdict = m.Failure is not null ? "FAILED" : v50 < limit ? "met" : "missed";
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {m.Database} | {what} | {b50:0.0} | {v50:0.0} | {v90:0.0} | {v50 / b50:0.00} | {target} | {verdict} |"));
    }

    public static double Percentile(double[] values, double p)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, Math.Max(0, (int)Math.Ceiling(p * sorted.Length) - 1))];
    }
}

/// <summary>
/// The ui scenario: a server of its own with 100,000 jobs written straight into its database (as the jobs-list test
/// does), one job waiting for approval whose log holds 100,000 events, and a ticking runbook; Debian's Chromium
/// (/usr/bin/chromium) driven by Playwright reads the pages as a signed-in admin.
/// </summary>
internal static class UiBench
{
    private const string Chromium = "/usr/bin/chromium";
    private const int Jobs = 100_000, Events = 100_000, Repeats = 15, Ticks = 40;

    private const string Gated =
        """
        name: bench-gated
        options: {requires_approval: true}
        steps:
          - {name: noop, kind: noop, with: {message: done}}
        """;

    public static string Describe() =>
        $"ui: {Jobs:N0} jobs and a job with {Events:N0} events written into the server's database; GET /jobs pages ({Repeats} each of 3 filters) " +
        $"beside GET /api/v1/jobs?limit=50; first contentful paint in headless Chromium of /signin (baseline), /jobs and the long job's page; " +
        $"a runbook of {Ticks} sleep steps of 100 ms followed at once by a plain SSE client (baseline) and by an open job page";

    public static async Task<UiMeasurement> RunAsync(BenchOptions options, TextWriter o, HttpClient http, CancellationToken ct)
    {
        if (!File.Exists(Chromium))
            return Failed(options, $"{Chromium} is missing (apt-get install chromium)");
        var runbooks = Directory.CreateTempSubdirectory("opsgate-bench-runbooks-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(runbooks, "bench-gated.yaml"), Gated, ct);
            var ticker = "name: bench-ticker\noptions: {requires_approval: true}\nsteps:\n" +
                string.Concat(Enumerable.Range(1, Ticks).Select(i => $"  - {{name: tick_{i}, kind: sleep, with: {{duration: 100ms}}}}\n"));
            await File.WriteAllTextAsync(Path.Combine(runbooks, "bench-ticker.yaml"), ticker, ct);
            await using var server = await ServerProcess.StartAsync(options, http, ct, $"--Jobs:RunbookDirectory={runbooks}");
            o.WriteLine($"ui: server pid {server.ProcessId} at {server.BaseAddress}");
            return await MeasureAsync(options, o, server, ct);
        }
        catch (Exception e) when (e is BenchException or PlaywrightException or HttpRequestException or DbException or TimeoutException)
        {
            return Failed(options, e.Message);
        }
        finally
        {
            Directory.Delete(runbooks, recursive: true);
        }
    }

    private static UiMeasurement Failed(BenchOptions options, string why) =>
        new(options.DatabaseName, Jobs, [], [], [], [], Events, [], 0, [], [], why);

    private static async Task<UiMeasurement> MeasureAsync(BenchOptions options, TextWriter o, ServerProcess server, CancellationToken ct)
    {
        using var api = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        api.DefaultRequestHeaders.Add("X-API-Key", server.AdminKey);
        var longJob = await SubmitAsync(api, "bench-gated", ct);
        var watch = Stopwatch.StartNew();
        await using (var db = await OpenAsync(options, server, ct))
        {
            await SeedJobsAsync(db, ct);
            await SeedEventsAsync(db, longJob, ct);
        }
        o.WriteLine($"ui: wrote {Jobs:N0} jobs and {Events:N0} events of job {longJob} in {watch.Elapsed.TotalSeconds:0.0} s");

        var cookies = new CookieContainer();
        using var console = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        await SignInAsync(console, server.AdminKey, ct);

        // Server time: each page and its API baseline, alternating, after one unmeasured pass.
        string[] lists = ["/jobs", "/jobs?status=failed", "/jobs?type=bench-gated&actor=user7"];
        var listApi = new List<double>();
        var listPage = new List<double>();
        for (var i = -1; i < Repeats; i++)
        {
            foreach (var url in lists)
            {
                var a = await TimeAsync(api, "/api/v1/jobs?limit=50", ct);
                var p = await TimeAsync(console, url, ct);
                if (i < 0)
                    continue;
                listApi.Add(a);
                listPage.Add(p);
            }
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"],
        });
        var session = cookies.GetCookies(server.BaseAddress)["opsgate_session"] ?? throw new BenchException("signing in gave no session cookie");
        var signInFcp = new List<double>();
        var listFcp = new List<double>();
        var jobFcp = new List<double>();
        var inPage = 0;
        for (var i = -1; i < 5; i++)
        {
            // A fresh profile each time: nothing cached, as for a user opening the console.
            var signIn = await PaintAsync(browser, server, null, "/signin");
            var list = await PaintAsync(browser, server, session, "/jobs");
            var job = await PaintAsync(browser, server, session, $"/jobs/{longJob}");
            if (i < 0)
                continue;
            signInFcp.Add(signIn.Fcp);
            listFcp.Add(list.Fcp);
            jobFcp.Add(job.Fcp);
            inPage = job.Events;
        }

        var (sse, page) = await LatencyAsync(api, browser, server, session, ct);
        return new UiMeasurement(options.DatabaseName, Jobs, [.. listApi], [.. listPage], [.. signInFcp], [.. listFcp], Events, [.. jobFcp], inPage, sse, page, null);
    }

    private static async Task<string> SubmitAsync(HttpClient api, string type, CancellationToken ct)
    {
        using var response = await api.PostAsync("/api/v1/jobs", new StringContent($"{{\"type\":\"{type}\"}}", System.Text.Encoding.UTF8, "application/json"), ct);
        if (!response.IsSuccessStatusCode)
            throw new BenchException($"submitting {type}: HTTP {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return body.RootElement.GetProperty("job_id").GetString()!;
    }

    private static async Task<DbConnection> OpenAsync(BenchOptions options, ServerProcess server, CancellationToken ct)
    {
        DbConnection connection = options.PostgresConnectionString is { } cs
            ? new Npgsql.NpgsqlConnection(cs)
            : new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(server.DataDir, "opsgate.db")};Pooling=false;Default Timeout=30");
        await connection.OpenAsync(ct);
        return connection;
    }

    /// <summary>100,000 finished jobs over the last ten days: one in 100 failed, twenty actors, two types.</summary>
    private static async Task SeedJobsAsync(DbConnection db, CancellationToken ct)
    {
        var start = DateTimeOffset.UtcNow.AddDays(-10);
        await using var tx = await db.BeginTransactionAsync(ct);
        await using var insert = db.CreateCommand();
        insert.Transaction = tx;
        insert.CommandText = db is Npgsql.NpgsqlConnection
            ? "INSERT INTO jobs (id, type, status, params, actor, created_at, scoped) VALUES (@id, @type, @status, '{}', @actor, @created, true)"
            : "INSERT INTO jobs (id, type, status, params, actor, created_at, scoped) VALUES (@id, @type, @status, '{}', @actor, @created, 1)";
        var (id, type, status, actor, created) = (Parameter(insert, "id"), Parameter(insert, "type"), Parameter(insert, "status"), Parameter(insert, "actor"), Parameter(insert, "created"));
        await PrepareAsync(insert, ct);
        for (var i = 0; i < Jobs; i++)
        {
            var at = start.AddSeconds(i * 8);
            id.Value = Ulid(at);
            type.Value = i % 3 == 0 ? "bench-gated" : "noop";
            status.Value = i % 100 == 7 ? "failed" : "succeeded";
            actor.Value = $"user{i % 20}";
            created.Value = at.UtcDateTime;
            await insert.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    /// <summary>The long job's log: 100,000 more events after the ones the engine wrote, as a long Ansible run makes.</summary>
    private static async Task SeedEventsAsync(DbConnection db, string jobId, CancellationToken ct)
    {
        await using var tx = await db.BeginTransactionAsync(ct);
        await using var last = db.CreateCommand();
        last.Transaction = tx;
        last.CommandText = "SELECT last_seq FROM jobs WHERE id = @id";
        Parameter(last, "id").Value = jobId;
        var first = Convert.ToInt64(await last.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) + 1;
        await using var insert = db.CreateCommand();
        insert.Transaction = tx;
        insert.CommandText = "INSERT INTO job_events (job_id, seq, ts, type, step_order, data) VALUES (@job, @seq, @ts, 'ansible.task', NULL, @data)";
        var (job, seq, ts, data) = (Parameter(insert, "job"), Parameter(insert, "seq"), Parameter(insert, "ts"), Parameter(insert, "data"));
        await PrepareAsync(insert, ct);
        job.Value = jobId;
        var now = DateTime.UtcNow;
        for (var i = 0; i < Events; i++)
        {
            seq.Value = first + i;
            ts.Value = now;
            data.Value = $"{{\"host\":\"web-{i % 500}\",\"task\":\"Install packages\",\"status\":\"ok\",\"n\":{i}}}";
            await insert.ExecuteNonQueryAsync(ct);
        }
        await using var update = db.CreateCommand();
        update.Transaction = tx;
        update.CommandText = "UPDATE jobs SET last_seq = @seq WHERE id = @id";
        Parameter(update, "seq").Value = first + Events - 1;
        Parameter(update, "id").Value = jobId;
        await update.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    /// <summary>Prepared on SQLite; Npgsql would need each parameter's type before the first value, and infers it well enough.</summary>
    private static Task PrepareAsync(DbCommand command, CancellationToken ct) =>
        command is Microsoft.Data.Sqlite.SqliteCommand ? command.PrepareAsync(ct) : Task.CompletedTask;

    private static DbParameter Parameter(DbCommand command, string name)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        command.Parameters.Add(p);
        return p;
    }

    private static string Ulid(DateTimeOffset at)
    {
        const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
        Span<byte> bytes = stackalloc byte[16];
        var ms = (ulong)at.ToUnixTimeMilliseconds();
        for (var i = 5; i >= 0; i--, ms >>= 8)
            bytes[i] = (byte)(ms & 0xff);
        RandomNumberGenerator.Fill(bytes[6..]);
        var value = new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
        Span<char> chars = stackalloc char[26];
        for (var i = 25; i >= 0; i--, value >>= 5)
            chars[i] = Alphabet[(int)(value & 31)];
        return new string(chars);
    }

    private static async Task SignInAsync(HttpClient console, string key, CancellationToken ct)
    {
        var form = await console.GetStringAsync("/signin", ct);
        var token = Regex.Match(form, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        using var response = await console.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["key"] = key, ["__RequestVerificationToken"] = token }), ct);
        if (!response.IsSuccessStatusCode)
            throw new BenchException($"console sign-in: HTTP {(int)response.StatusCode}");
    }

    private static async Task<double> TimeAsync(HttpClient client, string url, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        using var response = await client.GetAsync(url, ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        var ms = watch.Elapsed.TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
            throw new BenchException($"GET {url}: HTTP {(int)response.StatusCode}");
        return ms;
    }

    /// <summary>Opens a page in a fresh browser profile and reads its first contentful paint (ms from navigation start).</summary>
    private static async Task<(double Fcp, int Events)> PaintAsync(IBrowser browser, ServerProcess server, System.Net.Cookie? session, string path)
    {
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = server.BaseAddress.ToString().TrimEnd('/') });
        if (session is not null)
            await context.AddCookiesAsync([new Microsoft.Playwright.Cookie { Name = session.Name, Value = session.Value, Domain = server.BaseAddress.Host, Path = "/", HttpOnly = true, SameSite = SameSiteAttribute.Strict }]);
        var page = await context.NewPageAsync();
        var response = await page.GotoAsync(path, new PageGotoOptions { WaitUntil = WaitUntilState.Load, Timeout = 60_000 });
        if (response is null || !response.Ok || page.Url.Contains("/signin", StringComparison.Ordinal) != path.StartsWith("/signin", StringComparison.Ordinal))
            throw new BenchException($"{path}: HTTP {response?.Status}, at {page.Url}");
        var fcp = await page.EvaluateAsync<double>(
            "() => new Promise(resolve => new PerformanceObserver(list => { const e = list.getEntriesByName('first-contentful-paint')[0]; if (e) resolve(e.startTime); }).observe({ type: 'paint', buffered: true }))");
        var events = await page.Locator("#event-log li").CountAsync();
        return (fcp, events);
    }

    /// <summary>
    /// A ticking job (waiting for approval until both readers are connected), followed by a plain SSE client and by an
    /// open job page. Each event's latency is its arrival time (system clock, same machine) minus its commit time stamp.
    /// </summary>
    private static async Task<(double[] Sse, double[] Page)> LatencyAsync(HttpClient api, IBrowser browser, ServerProcess server, System.Net.Cookie session, CancellationToken ct)
    {
        var id = await SubmitAsync(api, "bench-ticker", ct);
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = server.BaseAddress.ToString().TrimEnd('/') });
        await context.AddCookiesAsync([new Microsoft.Playwright.Cookie { Name = session.Name, Value = session.Value, Domain = server.BaseAddress.Host, Path = "/", HttpOnly = true, SameSite = SameSiteAttribute.Strict }]);
        var page = await context.NewPageAsync();
        await page.GotoAsync($"/jobs/{id}");
        await page.Locator("#live-state[data-state='open']").WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        await page.EvaluateAsync(
            "() => { window.__arrivals = []; new MutationObserver(ms => { const t = Date.now(); for (const m of ms) for (const n of m.addedNodes) if (n.dataset && n.dataset.seq) window.__arrivals.push([Number(n.dataset.seq), t]); }).observe(document.getElementById('event-log'), { childList: true }); }");

        using var stream = new HttpClient { BaseAddress = server.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        stream.DefaultRequestHeaders.Add("X-API-Key", server.AdminKey);
        using var response = await stream.GetAsync($"/api/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, ct);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var committed = new Dictionary<long, DateTime>();
        var sse = new Dictionary<long, double>();
        var read = Task.Run(async () =>
        {
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    continue;
                var arrived = DateTime.UtcNow;
                using var e = JsonDocument.Parse(line.AsMemory(6));
                var seq = e.RootElement.GetProperty("seq").GetInt64();
                var ts = e.RootElement.GetProperty("ts").GetDateTime().ToUniversalTime();
                committed[seq] = ts;
                sse[seq] = (arrived - ts).TotalMilliseconds;
                if (e.RootElement.GetProperty("type").GetString() == "job.finished")
                    return;
            }
        }, ct);
        await Task.Delay(500, ct);
        var approver = await CreateApproverAsync(api, ct);
        using (var approve = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/jobs/{id}/approve"))
        {
            approve.Headers.Add("X-API-Key", approver);
            using var answer = await api.SendAsync(approve, ct);
            if (!answer.IsSuccessStatusCode)
                throw new BenchException($"approving {id}: HTTP {(int)answer.StatusCode}");
        }
        await read.WaitAsync(TimeSpan.FromSeconds(120), ct);
        await page.Locator("#live-state[data-state='closed']").WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        var arrivals = await page.EvaluateAsync<double[][]>("() => window.__arrivals");
        var pageLatency = arrivals
            .Where(a => committed.ContainsKey((long)a[0]))
            .Select(a => DateTimeOffset.FromUnixTimeMilliseconds((long)a[1]).UtcDateTime - committed[(long)a[0]])
            .Select(d => d.TotalMilliseconds).ToArray();
        var seen = arrivals.Select(a => (long)a[0]).ToHashSet();
        return ([.. sse.Where(s => seen.Contains(s.Key)).Select(s => s.Value)], pageLatency);
    }

    private static async Task<string> CreateApproverAsync(HttpClient api, CancellationToken ct)
    {
        using var response = await api.PostAsync("/api/v1/apikeys",
            new StringContent("{\"name\":\"bench-approver\",\"role\":\"approver\"}", System.Text.Encoding.UTF8, "application/json"), ct);
        if (!response.IsSuccessStatusCode)
            throw new BenchException($"creating an approver key: HTTP {(int)response.StatusCode}");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return body.RootElement.GetProperty("key").GetString()!;
    }
}
