using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>Logs as the real binary writes them to stdout.</summary>
public sealed class LoggingTests
{
    private const string BootstrapKey = "bootstrap-secret-0123456789abcdef";
    private const string WrongKey = "og_this-key-was-never-issued-0123456789abcdef";

    [Fact]
    public async Task Json_logs_are_one_object_per_line_carry_the_request_id_and_never_a_key()
    {
        using var dir = new TempDir();
        await using var opsgate = await OpsgateProcess.StartReadyAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["OPSGATE_LOGGING__JSON"] = "true",
            ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = BootstrapKey,
        });
        var admin = opsgate.Client(BootstrapKey);
        var created = await admin.PostAsJsonAsync("/api/v1/apikeys", new { name = "logged", role = "viewer" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await opsgate.Client(key).GetAsync("/api/v1/audit?limit=1")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await opsgate.Client(key).GetAsync("/api/v1/apikeys")).StatusCode);
        var refused = await opsgate.Client(WrongKey).GetAsync("/api/v1/apikeys");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var requestId = Assert.Single(refused.Headers.GetValues("X-Request-Id"));

        // The refusal is logged at Information, in the request's scope; the console logger writes in order, so every earlier line is out too.
        var line = await opsgate.WaitForStdoutAsync(l => l.Contains(requestId, StringComparison.Ordinal) && l.Contains("\"Opsgate.Requests\"", StringComparison.Ordinal), "the log line of the refused request");
        using (var entry = JsonDocument.Parse(line))
        {
            var root = entry.RootElement;
            Assert.Equal("Information", root.GetProperty("LogLevel").GetString());
            Assert.Equal(401, root.GetProperty("State").GetProperty("Status").GetInt32());
            Assert.Equal("/api/v1/apikeys", root.GetProperty("State").GetProperty("Endpoint").GetString());
            Assert.Contains(root.GetProperty("Scopes").EnumerateArray(), s => s.TryGetProperty("RequestId", out var id) && id.GetString() == requestId);
        }
        // One line per refusal: the authentication handler's own chatter stays below the default level.
        Assert.Single(opsgate.StdoutLines, l => l.Contains(requestId, StringComparison.Ordinal));

        // Every stdout line is a JSON entry, the start-up line (printed, not logged) included.
        Assert.Contains(opsgate.StdoutLines, l => l.Contains("\"Category\":\"Opsgate.Startup\"", StringComparison.Ordinal) && l.Contains("Opsgate listening on ", StringComparison.Ordinal));
        foreach (var stdout in opsgate.StdoutLines)
        {
            using var entry = ParseOrFail(stdout);
            Assert.True(entry.RootElement.TryGetProperty("Category", out _), stdout);
            Assert.True(entry.RootElement.TryGetProperty("Message", out _), stdout);
            if (entry.RootElement.GetProperty("Category").GetString() == "Opsgate.Requests")
                Assert.Contains(entry.RootElement.GetProperty("Scopes").EnumerateArray(), s => s.TryGetProperty("RequestId", out _));
        }
        var output = opsgate.Output;
        Assert.DoesNotContain(BootstrapKey, output, StringComparison.Ordinal);
        Assert.DoesNotContain(key, output, StringComparison.Ordinal);
        Assert.DoesNotContain(WrongKey, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_logs_hold_the_generated_key_in_one_field_of_one_line_and_a_jobs_lines_carry_its_trace_id()
    {
        await using var collector = await WebhookReceiver.StartAsync();
        using var dir = new TempDir();
        await using var opsgate = await OpsgateProcess.StartReadyAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["OPSGATE_LOGGING__JSON"] = "true",
            // The standard variable, a collector's base address as its guides give it.
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Url("/").TrimEnd('/'),
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        });
        var notice = opsgate.StdoutLines.Single(l => l.Contains("BootstrapAdminKey", StringComparison.Ordinal) && l.Contains("\"Opsgate.Startup\"", StringComparison.Ordinal));
        string key;
        using (var entry = ParseOrFail(notice))
            key = entry.RootElement.GetProperty("BootstrapAdminKey").GetString()!;
        Assert.StartsWith("og_", key, StringComparison.Ordinal);

        var id = await TestJobs.SubmitAsync(opsgate.Client(key), "noop", new { message = "traced" });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(opsgate.Client(key), id)).Status());
        var finished = await opsgate.WaitForStdoutAsync(l => l.Contains(id, StringComparison.Ordinal) && l.Contains("\"Opsgate.Server.Engine.JobRunner\"", StringComparison.Ordinal), "the job's finish");
        string traceId;
        using (var entry = ParseOrFail(finished))
            traceId = entry.RootElement.GetProperty("Scopes").EnumerateArray().Single(s => s.TryGetProperty("TraceId", out _)).GetProperty("TraceId").GetString()!;

        // The trace the line names is the job's, which is the submit request's: the log leads to the trace.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        IReadOnlyList<ReceivedSpan> spans;
        while (!(spans = collector.Requests.Where(r => r.PathAndQuery == "/v1/traces").SelectMany(r => OtlpTraces.Parse(r.Body)).ToList())
                   .Any(s => s.Attribute("opsgate.job.id") == id))
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), "the job's span did not reach the collector within 15 s");
            await Task.Delay(50);
        }
        var job = spans.Single(s => s.Attribute("opsgate.job.id") == id);
        Assert.Equal(traceId, job.TraceId);
        Assert.Contains(spans, s => s.SpanId == job.ParentSpanId && s.Attribute("http.route") == "/api/v1/jobs" && s.TraceId == traceId);

        foreach (var stdout in opsgate.StdoutLines)
            ParseOrFail(stdout).Dispose();
        // The key was shown once, to the operator: in no other line, not on stderr, not in any span.
        Assert.Single(opsgate.StdoutLines, l => l.Contains(key, StringComparison.Ordinal));
        Assert.DoesNotContain(opsgate.StderrLines, l => l.Contains(key, StringComparison.Ordinal));
        Assert.DoesNotContain(collector.Requests, r => r.Body.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(key)) >= 0);
    }

    private static JsonDocument ParseOrFail(string line)
    {
        try
        {
            return JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"not a JSON log line ({e.Message}): {line}");
        }
    }
}
