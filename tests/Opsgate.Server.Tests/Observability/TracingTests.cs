using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Ansible;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Observability;

/// <summary>
/// Traces exported over OTLP/HTTP (protobuf, the exporter's wire format with http/protobuf) to a loopback receiver that
/// records what a collector would get. Other servers of the suite run in this process and their spans may arrive too:
/// every assertion follows ids from this test's own job or request.
/// </summary>
public sealed class TracingTests
{
    [Fact]
    public async Task A_job_and_its_steps_are_spans_in_the_trace_of_the_request_that_submitted_it()
    {
        await using var collector = await WebhookReceiver.StartAsync();
        await using var target = await WebhookReceiver.StartAsync();
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "traced.yaml"), $$"""
            name: traced
            steps:
              - name: call
                kind: http.call
                with: {url: "{{target.Url("/ping")}}" }
              - {name: done, kind: noop}
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [$"--Jobs:RunbookDirectory={runbooks.Path}", $"--OpenTelemetry:Endpoint={collector.Url("/")}", "--OTEL_BSP_SCHEDULE_DELAY=100"]);

        var id = await TestJobs.SubmitAsync(server.Admin, "traced");
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());

        var spans = await SpansAsync(collector, all => all.FirstOrDefault(s => s.Attribute("opsgate.job.id") == id) is { } run
            && all.Any(s => s.SpanId == run.ParentSpanId) && all.Count(s => s.ParentSpanId == run.SpanId) == 2
            && all.Any(s => s.Kind == ReceivedSpan.KindClient && s.Attribute("url.full") == target.Url("/ping")));
        var job = Assert.Single(spans, s => s.Name == "job traced" && s.Attribute("opsgate.job.id") == id);
        Assert.Equal("Opsgate.Engine", job.Scope);
        Assert.Equal("succeeded", job.Attribute("opsgate.job.status"));
        // The job ran after the request had answered, in the request's trace, as its child.
        var request = Assert.Single(spans, s => s.SpanId == job.ParentSpanId);
        Assert.Equal(job.TraceId, request.TraceId);
        Assert.Equal(ReceivedSpan.KindServer, request.Kind);
        Assert.Equal("/api/v1/jobs", request.Attribute("http.route"));
        Assert.Equal("POST", request.Attribute("http.request.method"));

        var steps = spans.Where(s => s.ParentSpanId == job.SpanId).OrderBy(s => s.Attribute("opsgate.step.order"), StringComparer.Ordinal).ToList();
        Assert.Equal(["step http.call", "step noop"], steps.Select(s => s.Name));
        Assert.All(steps, s => Assert.Equal((job.TraceId, "succeeded"), (s.TraceId, s.Attribute("opsgate.step.status"))));
        // The step's outgoing call is its child, and the called service was told the trace (W3C traceparent).
        var call = Assert.Single(spans, s => s.ParentSpanId == steps[0].SpanId);
        Assert.Equal(ReceivedSpan.KindClient, call.Kind);
        Assert.Equal(target.Url("/ping"), call.Attribute("url.full"));
        Assert.Contains($"-{job.TraceId}-", Assert.Single(target.Requests).Header("traceparent"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_step_marks_its_span_and_the_jobs_as_errors()
    {
        await using var collector = await WebhookReceiver.StartAsync();
        await using var target = await WebhookReceiver.StartAsync(WebhookReceiver.Statuses(404));
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "missing.yaml"), $$"""
            name: missing
            steps:
              - name: call
                kind: http.call
                with: {url: "{{target.Url("/gone")}}" }
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [$"--Jobs:RunbookDirectory={runbooks.Path}", $"--OpenTelemetry:Endpoint={collector.Url("/")}", "--OTEL_BSP_SCHEDULE_DELAY=100"]);

        var id = await TestJobs.SubmitAsync(server.Admin, "missing");
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, id)).Status());

        var spans = await SpansAsync(collector, all => all.Any(s => s.Attribute("opsgate.job.id") == id));
        var job = Assert.Single(spans, s => s.Attribute("opsgate.job.id") == id);
        Assert.Equal(ReceivedSpan.StatusError, job.StatusCode);
        var step = Assert.Single(spans, s => s.ParentSpanId == job.SpanId);
        Assert.Equal(("failed", ReceivedSpan.StatusError), (step.Attribute("opsgate.step.status"), step.StatusCode));
    }

    [Fact]
    public async Task A_git_call_made_for_a_request_is_a_span_under_it()
    {
        await using var collector = await WebhookReceiver.StartAsync();
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("first", ("site.yml", "- hosts: all\n  tasks: []\n"));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [repo.AllowArg, $"--OpenTelemetry:Endpoint={collector.Url("/")}", "--OTEL_BSP_SCHEDULE_DELAY=100"]);

        var created = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "traced", git_repo = repo.Bare }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var spans = await SpansAsync(collector, all => all.Any(s => s.Scope == "Opsgate.Git"
            && all.Any(r => r.SpanId == s.ParentSpanId && r.Attribute("http.route") == "/api/v1/projects")));
        var request = Assert.Single(spans, s => s.Attribute("http.route") == "/api/v1/projects" && s.Attribute("http.request.method") == "POST");
        var git = Assert.Single(spans, s => s.Scope == "Opsgate.Git" && s.ParentSpanId == request.SpanId);
        Assert.Equal("git ls-remote", git.Name);
        Assert.Equal("0", git.Attribute("process.exit.code"));
        // Only the subcommand is recorded: no argument (a URL could carry a user name) reaches the collector.
        Assert.DoesNotContain(spans.Where(s => s.Scope == "Opsgate.Git").SelectMany(s => s.Attributes.Values), v => v.Contains(repo.Bare, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_call_to_a_cluster_made_for_a_request_is_a_span_under_it()
    {
        await using var collector = await WebhookReceiver.StartAsync();
        await using var sim = await SimCluster.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--OpenTelemetry:Endpoint={collector.Url("/")}", "--OTEL_BSP_SCHEDULE_DELAY=100"]);
        await SimCluster.RegisterAsync(server, sim, "kind-prod", ["prod"]);

        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/api/v1/clusters/kind-prod/status")).StatusCode);

        var route = "/api/v1/clusters/{name}/status";
        var spans = await SpansAsync(collector, all => all.Any(s => s.Kind == ReceivedSpan.KindClient
            && all.Any(r => r.SpanId == s.ParentSpanId && r.Attribute("http.route") == route)));
        var request = Assert.Single(spans, s => s.Attribute("http.route") == route);
        var call = Assert.Single(spans, s => s.ParentSpanId == request.SpanId && s.Kind == ReceivedSpan.KindClient);
        Assert.StartsWith(sim.BaseAddress.ToString(), call.Attribute("url.full"), StringComparison.Ordinal);
    }

    /// <summary>Every span received so far, once <paramref name="enough"/> holds for them; fails with what arrived after 15 s.</summary>
    private static async Task<IReadOnlyList<ReceivedSpan>> SpansAsync(WebhookReceiver collector, Func<IReadOnlyList<ReceivedSpan>, bool> enough)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var spans = collector.Requests.Where(r => r.PathAndQuery == "/v1/traces").SelectMany(r => OtlpTraces.Parse(r.Body)).ToList();
            if (enough(spans))
                return spans;
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15),
                $"the spans did not arrive within 15 s; got: {JsonSerializer.Serialize(spans.Select(s => new { s.Scope, s.Name, s.TraceId, s.SpanId, s.ParentSpanId }))}");
            await Task.Delay(50);
        }
    }
}
