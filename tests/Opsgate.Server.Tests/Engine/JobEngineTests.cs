using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using KubeSim;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>The job engine over real HTTP: pg-rebuild against KubeSim, dry run, cancel, retry, approvals, timeouts, bad input.</summary>
public sealed class JobEngineTests
{
    internal static Task<KubeSimServer> StartSimAsync() => SimCluster.StartAsync();

    internal static Task RegisterAsync(OpsgateServer server, KubeSimServer sim, string name = "default") =>
        SimCluster.RegisterAsync(server, sim, name, ["prod"]);

    private static string? Uid(KubeSimServer sim, string apiVersion, string plural, string name) =>
        sim.Store.Get(apiVersion, plural, "prod", name)?["metadata"]?["uid"]?.GetValue<string>();

    private static async Task<TempDir> RunbooksAsync(params (string File, string Yaml)[] runbooks)
    {
        var dir = new TempDir();
        foreach (var (file, yaml) in runbooks)
            await File.WriteAllTextAsync(Path.Combine(dir.Path, file), yaml);
        return dir;
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Pg_rebuild_really_recreates_the_pvc_and_the_pod_comes_back_ready(Provider provider)
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(provider);
        await RegisterAsync(server, sim);
        await sim.Store.WaitUntilAsync(s => s.Get("v1", "pods", "prod", "postgres-0")?["status"]?["phase"]?.GetValue<string>() == "Running", TimeSpan.FromSeconds(10));
        var pvcBefore = Uid(sim, "v1", "persistentvolumeclaims", "data-postgres-0");
        var podBefore = Uid(sim, "v1", "pods", "postgres-0");
        Assert.NotNull(pvcBefore);

        // apiops' own route and body
        var submitted = await server.Admin.PostAsJsonAsync("/ops/jobs/pg-rebuild", new { @namespace = "prod", statefulset = "postgres", ordinal = 0, target_replicas = 1 });
        Assert.Equal(HttpStatusCode.Created, submitted.StatusCode);
        var id = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("job_id").GetString()!;

        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal(["scale_sts_to_zero", "wait_pods_down", "delete_pvc", "scale_sts_to_target", "wait_pods_ready"],
            job.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        Assert.All(job.StepStatuses(), s => Assert.Equal("succeeded", s));
        Assert.Contains("0 pods left", job.Step("wait_pods_down").GetProperty("detail").GetString(), StringComparison.Ordinal);

        var pvcAfter = Uid(sim, "v1", "persistentvolumeclaims", "data-postgres-0");
        Assert.NotNull(pvcAfter);
        Assert.NotEqual(pvcBefore, pvcAfter);
        Assert.NotEqual(podBefore, Uid(sim, "v1", "pods", "postgres-0"));
        var pod = sim.Store.Get("v1", "pods", "prod", "postgres-0")!;
        Assert.Contains(pod["status"]!["conditions"]!.AsArray(), c => c!["type"]!.GetValue<string>() == "Ready" && c["status"]!.GetValue<string>() == "True");

        // apiops' words on apiops' route: a script polling for "success" stops.
        var apiops = await server.Admin.GetFromJsonAsync<JsonElement>($"/ops/jobs/{id}");
        Assert.Equal("success", apiops.Status());
        Assert.All(apiops.StepStatuses(), s => Assert.Equal("success", s));
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?limit=100");
        var forJob = audit.GetProperty("items").EnumerateArray().Where(e => e.GetProperty("job_id").GetString() == id).Select(e => e.GetProperty("action").GetString()).ToList();
        Assert.Contains("job.submit", forJob);
        Assert.Contains("job.start", forJob);
        Assert.Equal(5, forJob.Count(a => a == "job.step.start"));
        Assert.Equal(5, forJob.Count(a => a == "job.step.finish"));
        Assert.Contains("job.succeeded", forJob);

        var metrics = await server.Client().GetStringAsync("/metrics");
        Assert.Contains("opsgate_jobs_total{status=\"succeeded\",type=\"pg-rebuild\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("opsgate_job_start_latency_seconds_count{type=\"pg-rebuild\"} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dry_run_plans_every_step_and_changes_nothing()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var pvc = Uid(sim, "v1", "persistentvolumeclaims", "data-postgres-0");
        var id = await TestJobs.SubmitAsync(server.Admin, "pg-rebuild", new { @namespace = "prod", statefulset = "postgres", ordinal = 0 }, dryRun: true);
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.True(job.GetProperty("dry_run").GetBoolean());
        Assert.StartsWith("would scale statefulset prod/postgres to 0", job.Step("scale_sts_to_zero").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("would wait", job.Step("wait_pods_down").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("would delete persistentvolumeclaim prod/data-postgres-0", job.Step("delete_pvc").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(pvc, Uid(sim, "v1", "persistentvolumeclaims", "data-postgres-0"));
        Assert.Equal(1, int.Parse(sim.Store.Get("apps/v1", "statefulsets", "prod", "postgres")!["spec"]!["replicas"]!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture));
    }

    private const string Slow = """
        name: slow
        parameters:
          - {name: seconds, type: string, default: 30s}
        steps:
          - {name: first, kind: noop}
          - {name: wait, kind: sleep, with: {duration: "{{ params.seconds }}"}}
          - {name: last, kind: noop}
        """;

    [Fact]
    public async Task Cancel_stops_the_running_step_promptly_and_skips_the_rest()
    {
        using var dir = await RunbooksAsync(("slow.yaml", Slow));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "slow");
        await TestJobs.WaitAsync(server.Admin, id, j => j.Step("wait").GetProperty("status").GetString() == "running");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var cancel = await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(5));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal("cancelled", job.Status());
        Assert.Equal(["succeeded", "skipped", "skipped"], job.StepStatuses());
        Assert.Contains("bootstrap-admin", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_failed_job_is_retried_from_the_failed_step()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var id = await TestJobs.SubmitAsync(server.Admin, "pg-rebuild", new { @namespace = "prod", statefulset = "mysql", ordinal = 0 });
        var failed = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("failed", failed.Status());
        Assert.Equal(["failed", "skipped", "skipped", "skipped", "skipped"], failed.StepStatuses());
        Assert.Contains("mysql", failed.GetProperty("error").GetString(), StringComparison.Ordinal);

        sim.Store.Apply(SimCluster.Seed.Replace("postgres", "mysql", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/retry", null)).StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(2, job.Step("scale_sts_to_zero").GetProperty("attempts").GetInt32());
        Assert.Equal(1, job.Step("delete_pvc").GetProperty("attempts").GetInt32());
        await Problem.AssertAsync(await server.Admin.PostAsync($"/api/v1/jobs/{id}/retry", null), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_job_needing_approval_waits_for_an_approver_who_is_not_the_requester()
    {
        using var dir = await RunbooksAsync(("gated.yaml", """
            name: gated
            options: {requires_approval: true}
            parameters:
              - {name: reason, type: string, required: true}
            steps:
              - {name: only, kind: noop, with: {message: "{{ params.reason }}"}}
            """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]);
        var requester = server.Client((await server.CreateKeyAsync("rita", "approver")).Key);
        var approver = server.Client((await server.CreateKeyAsync("anna", "approver")).Key);
        var viewer = server.Client((await server.CreateKeyAsync("vic", "viewer")).Key);

        var id = await TestJobs.SubmitAsync(requester, "gated", new { reason = "rotate" });
        var waiting = await TestJobs.GetAsync(approver, id);
        Assert.Equal("waiting_approval", waiting.Status());
        Assert.Equal("rotate", waiting.GetProperty("params").GetProperty("reason").GetString());
        Assert.Contains("waiting for approval", waiting.GetProperty("pending_reason").GetString(), StringComparison.Ordinal);

        Assert.Contains("submitted it", await Problem.AssertAsync(await requester.PostAsJsonAsync($"/api/v1/jobs/{id}/approve", new { comment = "me" }), HttpStatusCode.Forbidden), StringComparison.Ordinal);
        await Problem.AssertAsync(await viewer.PostAsJsonAsync($"/api/v1/jobs/{id}/approve", new { comment = "lgtm" }), HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.OK, (await approver.PostAsJsonAsync($"/api/v1/jobs/{id}/approve", new { comment = "lgtm" })).StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.Equal("anna", job.GetProperty("decided_by").GetString());
        Assert.Equal("rotate", job.Step("only").GetProperty("detail").GetString());

        var second = await TestJobs.SubmitAsync(requester, "gated", new { reason = "again" });
        Assert.Equal(HttpStatusCode.OK, (await approver.PostAsJsonAsync($"/api/v1/jobs/{second}/reject", new { comment = "not today" })).StatusCode);
        var rejected = await TestJobs.GetAsync(server.Admin, second);
        Assert.Equal("cancelled", rejected.Status());
        Assert.Contains("not today", rejected.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Job_and_step_timeouts_fail_the_job_with_the_reason()
    {
        using var dir = await RunbooksAsync(
            ("slow.yaml", Slow),
            ("bounded.yaml", """
                name: bounded
                options: {timeout: 300ms}
                steps:
                  - {name: wait, kind: sleep, with: {duration: 30s}}
                """),
            ("step-bounded.yaml", """
                name: step-bounded
                steps:
                  - {name: wait, kind: sleep, with: {duration: 30s}, timeout: 200ms, attempts: 2, backoff: 10ms}
                """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]);
        var job = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "bounded"), timeout: TimeSpan.FromSeconds(10));
        Assert.Equal("failed", job.Status());
        Assert.Contains("timed out", job.GetProperty("error").GetString(), StringComparison.Ordinal);

        job = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "step-bounded"), timeout: TimeSpan.FromSeconds(10));
        Assert.Equal("failed", job.Status());
        Assert.Equal(2, job.Step("wait").GetProperty("attempts").GetInt32());
        Assert.Contains("timed out after", job.Step("wait").GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"type":"nope"}""", "type")]
    [InlineData("""{"type":"pg-rebuild","params":{"statefulset":"postgres","ordinal":0}}""", "params.namespace")]
    [InlineData("""{"type":"pg-rebuild","params":{"namespace":"prod","statefulset":"postgres","ordinal":-1}}""", "params.ordinal")]
    [InlineData("""{"type":"pg-rebuild","params":{"namespace":"prod","statefulset":"postgres","ordinal":"zero"}}""", "params.ordinal")]
    [InlineData("""{"type":"pg-rebuild","params":{"namespace":"Prod!","statefulset":"postgres","ordinal":0}}""", "params.namespace")]
    [InlineData("""{"type":"pg-rebuild","params":{"namespace":"prod","statefulset":"postgres","ordinal":0,"extra":1}}""", "params.extra")]
    [InlineData("""{"type":"pg-rebuild","params":{"namespace":"prod","statefulset":"postgres","ordinal":0,"cluster":"nowhere"}}""", "params.cluster")]
    public async Task Bad_submissions_are_400s_naming_the_field_and_store_nothing(string body, string field)
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var detail = await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/jobs", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.StartsWith(field, detail, StringComparison.Ordinal);
        var list = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs");
        Assert.Equal(0, list.GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task A_namespace_outside_the_callers_allowlist_is_refused_at_submit()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var staging = server.Client((await server.CreateKeyAsync("stan", "operator", ["staging"])).Key);
        var detail = await Problem.AssertAsync(await staging.PostAsJsonAsync("/api/v1/jobs",
            new { type = "pg-rebuild", @params = new { @namespace = "prod", statefulset = "postgres", ordinal = 0 } }), HttpStatusCode.Forbidden);
        Assert.Contains("stan's namespace allowlist", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_rebuilds_of_one_statefulset_never_run_at_once()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var first = await TestJobs.SubmitAsync(server.Admin, "pg-rebuild", new { @namespace = "prod", statefulset = "postgres", ordinal = 0 });
        var second = await TestJobs.SubmitAsync(server.Admin, "pg-rebuild", new { @namespace = "prod", statefulset = "postgres", ordinal = 0 });
        var waiting = await TestJobs.WaitAsync(server.Admin, second, j => j.Status() == "pending" && j.GetProperty("pending_reason").GetString()!.Contains(first, StringComparison.Ordinal)
            || j.Status() != "pending");
        var a = await TestJobs.WaitAsync(server.Admin, first);
        var b = await TestJobs.WaitAsync(server.Admin, second);
        Assert.Equal("succeeded", a.Status());
        Assert.Equal("succeeded", b.Status());
        Assert.True(b.GetProperty("started_at").GetDateTime() >= a.GetProperty("finished_at").GetDateTime(),
            $"second started {b.GetProperty("started_at")} before first finished {a.GetProperty("finished_at")} ({waiting})");
    }

    [Fact]
    public async Task Runbooks_are_listed_with_their_parameter_schema()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var runbooks = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/runbooks");
        var pg = runbooks.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "pg-rebuild");
        var ordinal = pg.GetProperty("parameters").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "ordinal");
        Assert.Equal("int", ordinal.GetProperty("type").GetString());
        Assert.True(ordinal.GetProperty("required").GetBoolean());
        Assert.Equal(5, pg.GetProperty("steps").GetArrayLength());
    }
}
