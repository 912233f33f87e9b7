using System.Diagnostics;
using System.Net;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Observability;

public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_count_requests_by_route_template_and_pass_promtool()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (id, _) = await server.CreateKeyAsync("scraped", "viewer");
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/api/v1/apikeys")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"/api/v1/apikeys/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await server.Client().GetAsync("/api/v1/apikeys")).StatusCode);

        // Asked as Prometheus asks (OpenMetrics first), the answer is still the text format, without OpenMetrics' _created series.
        using var scrapeRequest = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        scrapeRequest.Headers.TryAddWithoutValidation("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
        var response = await server.Client().SendAsync(scrapeRequest);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var scrape = await response.Content.ReadAsStringAsync();
        var lines = scrape.Split('\n');

        Assert.Contains("http_requests_total{endpoint=\"/api/v1/apikeys\",method=\"POST\",status=\"201\"} 1", lines);
        Assert.Contains("http_requests_total{endpoint=\"/api/v1/apikeys\",method=\"GET\",status=\"200\"} 1", lines);
        Assert.Contains("http_requests_total{endpoint=\"/api/v1/apikeys\",method=\"GET\",status=\"401\"} 1", lines);
        Assert.Contains("http_requests_total{endpoint=\"/api/v1/apikeys/{id}\",method=\"DELETE\",status=\"204\"} 1", lines);
        Assert.DoesNotContain(id, scrape, StringComparison.Ordinal);
        Assert.DoesNotContain("_created", scrape, StringComparison.Ordinal);
        Assert.DoesNotContain("otel_scope", scrape, StringComparison.Ordinal);
        Assert.DoesNotContain("target_info", scrape, StringComparison.Ordinal);
        Assert.Contains("http_request_duration_seconds_bucket{endpoint=\"/api/v1/apikeys\",method=\"POST\",le=\"+Inf\"} 1", lines);
        Assert.Contains(lines, l => l.StartsWith("http_request_duration_seconds_sum{endpoint=\"/api/v1/apikeys/{id}\",method=\"DELETE\"} ", StringComparison.Ordinal));
        // Audited: the create, the revoke and the refused request.
        Assert.Contains("opsgate_audit_entries_written_total{} 3", lines);
        // Each of them waited for its entry's commit before answering.
        Assert.Contains("opsgate_audit_wait_seconds_count{} 3", lines);
        Assert.True(Scrape.Sum(scrape, "opsgate_audit_wait_seconds_sum{} ") > 0);
        foreach (var basic in new[] { "process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "dotnet_gc_heap_bytes" })
            Assert.Contains(lines, l => l.StartsWith(basic + "{} ", StringComparison.Ordinal));

        var (exitCode, lint) = await PromtoolCheckAsync(scrape);
        Assert.True(exitCode == 0 && lint.Length == 0, $"promtool check metrics exited {exitCode}: {lint}\n{scrape}");
    }

    [Fact]
    public async Task A_body_refused_while_it_is_read_counts_as_the_400_the_client_got()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        foreach (var body in new[] { "{\"name\":\"k\",\"role\":\"viewer\",\"colour\":\"red\"}", "{\"name\":" })
        {
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.PostAsync("/api/v1/apikeys", content)).StatusCode);
        }

        var lines = (await server.Client().GetStringAsync("/metrics")).Split('\n');
        Assert.Contains("http_requests_total{endpoint=\"/api/v1/apikeys\",method=\"POST\",status=\"400\"} 2", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("http_requests_total{endpoint=\"/api/v1/apikeys\",method=\"POST\",status=\"200\"}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Methods_a_client_makes_up_share_one_label()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        foreach (var method in new[] { "FOO", "BAR", "PROPFIND" })
            Assert.True((await server.Admin.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/api/v1/apikeys"))).StatusCode >= HttpStatusCode.BadRequest);

        var lines = (await server.Client().GetStringAsync("/metrics")).Split('\n');
        Assert.Contains(lines, l => l.StartsWith("http_requests_total{", StringComparison.Ordinal) && l.Contains("method=\"OTHER\"", StringComparison.Ordinal) && l.EndsWith(" 3", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("FOO", StringComparison.Ordinal) || l.Contains("PROPFIND", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Job_metrics_count_finished_jobs_by_type_and_status_and_pass_promtool()
    {
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "gated.yaml"), """
            name: gated
            options: {requires_approval: true}
            steps:
              - {name: only, kind: noop}
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var ran = await TestJobs.SubmitAsync(server.Admin, "noop", new { message = "hi" });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, ran)).Status());
        // Cancelled before it ever started: still a finished job.
        var waiting = await TestJobs.SubmitAsync(server.Admin, "gated");
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{waiting}/cancel", null)).StatusCode);

        var scrape = await server.Client().GetStringAsync("/metrics");
        var lines = scrape.Split('\n');
        Assert.Contains("opsgate_jobs_total{status=\"succeeded\",type=\"noop\"} 1", lines);
        Assert.Contains("opsgate_jobs_total{status=\"cancelled\",type=\"gated\"} 1", lines);
        Assert.Contains("opsgate_job_duration_seconds_count{type=\"noop\"} 1", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("opsgate_job_duration_seconds_count{type=\"gated\"}", StringComparison.Ordinal));
        Assert.Contains("opsgate_job_start_latency_seconds_count{type=\"noop\"} 1", lines);
        Assert.Contains(lines, l => l.StartsWith("opsgate_jobs_queued{} ", StringComparison.Ordinal));

        var (exitCode, lint) = await PromtoolCheckAsync(scrape);
        Assert.True(exitCode == 0 && lint.Length == 0, $"promtool check metrics exited {exitCode}: {lint}\n{scrape}");
    }

    [Fact]
    public async Task Metrics_RequireKey_puts_the_scrape_behind_a_viewer_key()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Metrics:RequireKey=true"]);
        var (_, key) = await server.CreateKeyAsync("prometheus", "viewer");

        var refused = await server.Client().GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("http_requests_total", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var scraped = await server.Client(key).GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
        Assert.Contains("http_requests_total{endpoint=\"/metrics\",method=\"GET\",status=\"401\"} 1", (await scraped.Content.ReadAsStringAsync()).Split('\n'));
    }

    /// <summary>Runs <c>promtool check metrics</c> (scripts/test.sh installs it) on <paramref name="scrape"/>; returns its exit code and everything it printed.</summary>
    private static async Task<(int ExitCode, string Output)> PromtoolCheckAsync(string scrape)
    {
        var info = new ProcessStartInfo("promtool")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("check");
        info.ArgumentList.Add("metrics");
        using var promtool = Process.Start(info)!;
        var stdout = promtool.StandardOutput.ReadToEndAsync();
        var stderr = promtool.StandardError.ReadToEndAsync();
        await promtool.StandardInput.WriteAsync(scrape);
        promtool.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await promtool.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            promtool.Kill();
            throw;
        }
        return (promtool.ExitCode, ((await stdout) + (await stderr)).Trim());
    }
}
