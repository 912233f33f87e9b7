using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using KubeSim;
using Microsoft.AspNetCore.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Auth;

/// <summary>
/// Keys limited to namespace prod against jobs acting on staging: they neither see nor touch them (list, get, events,
/// hosts, cancel, retry, approve, reject, the audit log), and a namespace a step only learns at run time is held to
/// the submitter's and the approver's allowlists when the step runs.
/// </summary>
public sealed class JobScopeTests
{
    private static readonly string[] RunbookFiles =
    [
        """
        name: hold-then-scale
        parameters:
          - {name: namespace, type: string, required: true}
          - {name: deployment, type: string, default: web}
          - {name: hold, type: string, default: 0s}
        steps:
          - name: hold
            kind: sleep
            with: {duration: "{{ params.hold }}"}
          - name: scale
            kind: k8s.scale
            with: {cluster: kube, namespace: "{{ params.namespace }}", kind: deployment, name: "{{ params.deployment }}", replicas: 2}
        """,
        """
        name: gated-scale
        options: {requires_approval: true}
        parameters:
          - {name: namespace, type: string, required: true}
        steps:
          - name: scale
            kind: k8s.scale
            with: {cluster: kube, namespace: "{{ params.namespace }}", kind: deployment, name: web, replicas: 2}
        """,
        """
        name: looked-up-scale
        parameters:
          - {name: url, type: string, required: true}
        steps:
          - name: lookup
            kind: http.call
            with: {url: "{{ params.url }}"}
          - name: scale
            kind: k8s.scale
            with: {cluster: kube, namespace: "{{ steps.lookup.outputs.body }}", kind: deployment, name: web, replicas: 3}
        """,
        """
        name: gated-looked-up-scale
        options: {requires_approval: true}
        parameters:
          - {name: url, type: string, required: true}
        steps:
          - name: lookup
            kind: http.call
            with: {url: "{{ params.url }}"}
          - name: scale
            kind: k8s.scale
            with: {cluster: kube, namespace: "{{ steps.lookup.outputs.body }}", kind: deployment, name: web, replicas: 3}
        """,
    ];

    internal sealed record Setup(TempDir Dir, KubeSimServer Sim, OpsgateServer Server, HttpClient Operator, HttpClient Approver, HttpClient Viewer) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Sim.DisposeAsync();
            Dir.Dispose();
        }
    }

    internal static async Task<Setup> StartAsync(Provider provider)
    {
        var dir = new TempDir();
        for (var i = 0; i < RunbookFiles.Length; i++)
            await File.WriteAllTextAsync(Path.Combine(dir.Path, $"r{i}.yaml"), RunbookFiles[i]);
        var sim = await SimCluster.StartAsync();
        var server = await OpsgateServer.StartAsync(provider, [$"--Jobs:RunbookDirectory={dir.Path}"]);
        await SimCluster.RegisterAsync(server, sim, "kube", ["prod", "staging"]);
        await SimCluster.RegisterAsync(server, sim, "default", ["prod", "staging"]); // the apiops-compatible routes' cluster
        var (_, op) = await server.CreateKeyAsync("ops-prod", "operator", ["prod"]);
        var (_, approver) = await server.CreateKeyAsync("approver-prod", "approver", ["prod"]);
        var (_, viewer) = await server.CreateKeyAsync("viewer-prod", "viewer", ["prod"]);
        return new Setup(dir, sim, server, server.Client(op), server.Client(approver), server.Client(viewer));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_prod_key_neither_sees_nor_touches_a_staging_job(Provider provider)
    {
        await using var s = await StartAsync(provider);
        var admin = s.Server.Admin;
        var running = await TestJobs.SubmitAsync(admin, "hold-then-scale", new { @namespace = "staging", hold = "30s" });
        var failed = await TestJobs.SubmitAsync(admin, "hold-then-scale", new { @namespace = "staging", deployment = "missing" });
        var waiting = await TestJobs.SubmitAsync(admin, "gated-scale", new { @namespace = "staging" });
        var prodJob = await TestJobs.SubmitAsync(admin, "hold-then-scale", new { @namespace = "prod" });
        await TestJobs.WaitAsync(admin, running, j => j.Step("hold").GetProperty("status").GetString() == "running");
        Assert.Equal("failed", (await TestJobs.WaitAsync(admin, failed)).Status());
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(admin, prodJob)).Status());

        foreach (var client in new[] { s.Operator, s.Approver, s.Viewer })
        {
            var listed = await client.GetFromJsonAsync<JsonElement>("/api/v1/jobs?limit=500");
            var ids = listed.GetProperty("items").EnumerateArray().Select(j => j.GetProperty("job_id").GetString()).ToList();
            Assert.Equal([prodJob], ids);
            foreach (var id in new[] { running, failed, waiting })
            {
                foreach (var path in new[] { $"/api/v1/jobs/{id}", $"/api/v1/jobs/{id}/events", $"/api/v1/jobs/{id}/hosts", $"/ops/jobs/{id}" })
                {
                    var detail = await Problem.AssertAsync(await client.GetAsync(path), HttpStatusCode.Forbidden);
                    Assert.Contains("namespace 'staging'", detail);
                }
            }
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/api/v1/jobs/{prodJob}")).StatusCode);
        }

        // Each action refused with a 403 naming the namespace, and nothing changed.
        foreach (var (client, action, id) in new[]
        {
            (s.Operator, "cancel", running), (s.Operator, "retry", failed), (s.Approver, "approve", waiting), (s.Approver, "reject", waiting),
            (s.Approver, "cancel", running),
        })
        {
            var detail = await Problem.AssertAsync(await client.PostAsJsonAsync($"/api/v1/jobs/{id}/{action}", new { }), HttpStatusCode.Forbidden);
            Assert.Contains("namespace 'staging'", detail);
        }
        Assert.Equal("running", (await TestJobs.GetAsync(admin, running)).Status());
        Assert.Equal("failed", (await TestJobs.GetAsync(admin, failed)).Status());
        Assert.Equal("waiting_approval", (await TestJobs.GetAsync(admin, waiting)).Status());

        // The same keys act on prod jobs as before.
        var prodWaiting = await TestJobs.SubmitAsync(admin, "gated-scale", new { @namespace = "prod" });
        Assert.Equal(HttpStatusCode.OK, (await s.Approver.PostAsJsonAsync($"/api/v1/jobs/{prodWaiting}/approve", new { })).StatusCode);
        var prodRunning = await TestJobs.SubmitAsync(s.Operator, "hold-then-scale", new { @namespace = "prod", hold = "30s" });
        Assert.Equal(HttpStatusCode.OK, (await s.Operator.PostAsJsonAsync($"/api/v1/jobs/{prodRunning}/cancel", new { })).StatusCode);

        // The audit log: the prod key sees its own entries and those of prod jobs, none about the staging jobs.
        var audit = await s.Viewer.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=1000");
        var entries = audit.GetProperty("items").EnumerateArray().ToList();
        Assert.DoesNotContain(entries, e => e.GetProperty("actor").GetString() != "viewer-prod"
            && e.GetProperty("job_id").GetString() is { } j && (j == running || j == failed || j == waiting));
        Assert.Contains(entries, e => e.GetProperty("job_id").GetString() == prodJob);
        Assert.Contains(entries, e => e.GetProperty("actor").GetString() == "viewer-prod" && e.GetProperty("status").GetString() == "denied");
        var all = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=1000");
        Assert.Contains(all.GetProperty("items").EnumerateArray(), e => e.GetProperty("job_id").GetString() == running);

        // Nor does the cluster listing's latest execution show another namespace's operation.
        await admin.PostAsJsonAsync("/api/v1/clusters/kube/namespaces/staging/deployments/web/restart", new { });
        var clusters = await s.Viewer.GetFromJsonAsync<JsonElement>("/api/v1/clusters");
        var kube = clusters.GetProperty("items").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "kube");
        Assert.NotEqual("staging", kube.GetProperty("latest_execution") is { ValueKind: JsonValueKind.Object } latest ? latest.GetProperty("namespace").GetString() : null);
        var seenByAdmin = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/clusters")).GetProperty("items").EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == "kube").GetProperty("latest_execution");
        Assert.Equal("staging", seenByAdmin.GetProperty("namespace").GetString());

        await admin.PostAsJsonAsync($"/api/v1/jobs/{running}/cancel", new { });
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_namespace_learned_from_a_step_output_is_checked_against_the_submitters_allowlist(Provider provider)
    {
        await using var s = await StartAsync(provider);
        await using var lookup = await StubHttpServer.StartAsync((ctx, _) => ctx.Response.WriteAsync(ctx.Request.Query["ns"].ToString()));

        var id = await TestJobs.SubmitAsync(s.Operator, "looked-up-scale", new { url = $"{lookup.BaseAddress}ask?ns=staging" });
        var job = await TestJobs.WaitAsync(s.Operator, id);
        Assert.Equal("failed", job.Status());
        var detail = job.Step("scale").GetProperty("detail").GetString();
        Assert.Contains("namespace 'staging' is not in the submitter ops-prod's namespace allowlist", detail);
        Assert.Equal(2, s.Sim.Store.Get("apps/v1", "deployments", "prod", "web")!["spec"]!["replicas"]!.GetValue<long>());
        // The refusal is in the audit log, on the step's entry.
        var audit = await s.Server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?action=job.step.finish&limit=100");
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), e =>
            e.GetProperty("job_id").GetString() == id && e.GetProperty("error_message").GetString()!.Contains("not in the submitter ops-prod's namespace allowlist"));

        // In prod it runs, and the job now shows where it acted.
        var ok = await TestJobs.SubmitAsync(s.Operator, "looked-up-scale", new { url = $"{lookup.BaseAddress}ask?ns=prod" });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(s.Operator, ok)).Status());
        Assert.Equal(3, s.Sim.Store.Get("apps/v1", "deployments", "prod", "web")!["spec"]!["replicas"]!.GetValue<long>());

        // An unrestricted submitter whose job learns staging at run time: the job leaves the prod key's view.
        var staging = await TestJobs.SubmitAsync(s.Server.Admin, "looked-up-scale", new { url = $"{lookup.BaseAddress}ask?ns=staging" });
        await TestJobs.WaitAsync(s.Server.Admin, staging);
        Assert.Equal(HttpStatusCode.Forbidden, (await s.Viewer.GetAsync($"/api/v1/jobs/{staging}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Viewer.GetAsync($"/api/v1/jobs/{ok}")).StatusCode);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_namespace_learned_at_run_time_is_checked_against_the_approvers_allowlist(Provider provider)
    {
        await using var s = await StartAsync(provider);
        await using var lookup = await StubHttpServer.StartAsync((ctx, _) => ctx.Response.WriteAsync("staging"));

        // The admin may act on staging; the prod-only approver who let the job run may not.
        var id = await TestJobs.SubmitAsync(s.Server.Admin, "gated-looked-up-scale", new { url = $"{lookup.BaseAddress}ask" });
        Assert.Equal(HttpStatusCode.OK, (await s.Approver.PostAsJsonAsync($"/api/v1/jobs/{id}/approve", new { })).StatusCode);
        var job = await TestJobs.WaitAsync(s.Server.Admin, id);
        Assert.Equal("failed", job.Status());
        Assert.Contains("namespace 'staging' is not in the approver approver-prod's namespace allowlist", job.Step("scale").GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Submitting_a_job_on_a_namespace_outside_the_keys_allowlist_is_refused_naming_it(Provider provider)
    {
        await using var s = await StartAsync(provider);
        var response = await s.Operator.PostAsJsonAsync("/api/v1/jobs", new { type = "hold-then-scale", @params = new { @namespace = "staging" } }, OpsgateServer.Json);
        Assert.Equal("namespace 'staging' is not in ops-prod's namespace allowlist", await Problem.AssertAsync(response, HttpStatusCode.Forbidden));
        var listed = await s.Server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs");
        Assert.Empty(listed.GetProperty("items").EnumerateArray());
    }
}
