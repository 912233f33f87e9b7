using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using KubeSim;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Kubernetes;

/// <summary>Atomic operations through Opsgate against KubeSim, over real HTTP on both sides.</summary>
public sealed class ClusterOpsTests
{
    private static Task<KubeSimServer> StartSimAsync(KubeSimOptions? options = null) => SimCluster.StartAsync(options);

    private static Task RegisterAsync(OpsgateServer server, KubeSimServer sim, string name = "kind-prod", string[]? namespaces = null) =>
        SimCluster.RegisterAsync(server, sim, name, namespaces ?? ["prod", "staging"]);

    private static int? Replicas(KubeSimServer sim, string plural, string name) =>
        sim.Store.Get("apps/v1", plural, "prod", name)?["spec"]?["replicas"] is { } replicas
            ? int.Parse(replicas.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture)
            : null;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Registered_cluster_is_listed_with_live_status_and_never_shows_its_kubeconfig(Provider provider)
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(provider);
        await RegisterAsync(server, sim);

        var list = await server.Admin.GetStringAsync("/api/v1/clusters");
        Assert.Contains("kind-prod", list, StringComparison.Ordinal);
        Assert.DoesNotContain("kubesim-token", list, StringComparison.Ordinal);
        Assert.DoesNotContain("kubeconfig", list, StringComparison.Ordinal);

        var status = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/clusters/kind-prod/status");
        Assert.Equal("connected", status.GetProperty("status").GetString());
        Assert.StartsWith("v1.", status.GetProperty("server_version").GetString(), StringComparison.Ordinal);

        var all = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/clusters/status");
        Assert.Equal("connected", all.GetProperty("clusters")[0].GetProperty("status").GetString());

        // The audit entry of the registration holds no kubeconfig.
        var audit = await server.Admin.GetStringAsync("/api/v1/audit?action=cluster.register");
        Assert.DoesNotContain("kubesim-token", audit, StringComparison.Ordinal);
        Assert.Contains("[REDACTED]", audit, StringComparison.Ordinal);

        await Problem.AssertAsync(await server.Admin.PostAsJsonAsync("/api/v1/clusters", new
        {
            name = "kind-prod",
            kubeconfig = Convert.ToBase64String(Encoding.UTF8.GetBytes(sim.KubeconfigYaml())),
            allowed_namespaces = new[] { "prod" },
        }, OpsgateServer.Json), HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Operator_scales_restarts_and_deletes_and_every_call_is_audited(Provider provider)
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(provider);
        await RegisterAsync(server, sim);
        var (_, key) = await server.CreateKeyAsync("alice", "operator");
        var alice = server.Client(key);
        const string ns = "/api/v1/clusters/kind-prod/namespaces/prod";

        var scaled = await alice.PostAsJsonAsync($"{ns}/deployments/web/scale", new { replicas = 3 });
        Assert.Equal(HttpStatusCode.OK, scaled.StatusCode);
        Assert.Equal(3, Replicas(sim, "deployments", "web"));

        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsJsonAsync($"{ns}/statefulsets/postgres/scale", new { replicas = 0 })).StatusCode);
        Assert.Equal(0, Replicas(sim, "statefulsets", "postgres"));

        var pods = await alice.GetFromJsonAsync<JsonElement>($"{ns}/pods?labelSelector=app%3Dweb");
        var pod = pods.GetProperty("items")[0].GetProperty("name").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await alice.DeleteAsync($"{ns}/pods/{pod}")).StatusCode);
        await Eventually(() => sim.Store.Get("v1", "pods", "prod", pod) is null);

        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"{ns}/deployments/web/restart", null)).StatusCode);
        Assert.NotNull(sim.Store.Get("apps/v1", "deployments", "prod", "web")?["spec"]?["template"]?["metadata"]?["annotations"]?["kubectl.kubernetes.io/restartedAt"]);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync($"{ns}/statefulsets/postgres/restart", null)).StatusCode);
        Assert.NotNull(sim.Store.Get("apps/v1", "statefulsets", "prod", "postgres")?["spec"]?["template"]?["metadata"]?["annotations"]?["kubectl.kubernetes.io/restartedAt"]);

        Assert.NotNull(sim.Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0"));
        Assert.Equal(HttpStatusCode.OK, (await alice.DeleteAsync($"{ns}/persistentvolumeclaims/data-postgres-0")).StatusCode);
        await Eventually(() => sim.Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0") is null);

        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?actor=alice&limit=20");
        var actions = audit.GetProperty("items").EnumerateArray()
            .Select(e => $"{e.GetProperty("action").GetString()} {e.GetProperty("resource_kind").GetString()} {e.GetProperty("namespace").GetString()}/{e.GetProperty("resource_name").GetString()} {e.GetProperty("status").GetString()}")
            .Reverse().ToList();
        Assert.Equal([
            "k8s.scale deployment prod/web success",
            "k8s.scale statefulset prod/postgres success",
            $"k8s.delete pod prod/{pod} success",
            "k8s.restart deployment prod/web success",
            "k8s.restart statefulset prod/postgres success",
            "k8s.delete persistentvolumeclaim prod/data-postgres-0 success",
        ], actions);
        var scaleEntry = audit.GetProperty("items").EnumerateArray().Last();
        Assert.Equal(3, scaleEntry.GetProperty("request_body").GetProperty("replicas").GetInt32());

        var status = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/clusters/status");
        var latest = status.GetProperty("clusters")[0].GetProperty("latest_execution");
        Assert.Equal("k8s.delete", latest.GetProperty("action").GetString());
        Assert.Equal("alice", latest.GetProperty("actor").GetString());

        var metrics = await server.Client().GetStringAsync("/metrics");
        Assert.Contains("opsgate_operations_total{action=\"k8s.scale\",cluster=\"kind-prod\",status=\"success\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("opsgate_cluster_up{cluster=\"kind-prod\"} 1", metrics, StringComparison.Ordinal);
        // The time spent in the cluster's answers is a part of the requests' time, never more.
        Assert.Contains("opsgate_cluster_call_duration_seconds_count{action=\"k8s.scale\",cluster=\"kind-prod\"} 2", metrics, StringComparison.Ordinal);
        var inCluster = Scrape.Sum(metrics, "opsgate_cluster_call_duration_seconds_sum{action=\"k8s.scale\"");
        var inRequests = Scrape.Sum(metrics, "http_request_duration_seconds_sum{endpoint=\"/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/scale\"")
            + Scrape.Sum(metrics, "http_request_duration_seconds_sum{endpoint=\"/api/v1/clusters/{cluster}/namespaces/{namespace}/statefulsets/{name}/scale\"");
        Assert.InRange(inCluster, double.Epsilon, inRequests);
    }

    [Fact]
    public async Task Dry_run_changes_nothing_and_is_audited_as_a_dry_run()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        const string ns = "/api/v1/clusters/kind-prod/namespaces/prod";

        var response = await server.Admin.PostAsJsonAsync($"{ns}/deployments/web/scale?dryRun=true", new { replicas = 7 });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(body.GetProperty("dry_run").GetBoolean());
        Assert.Equal(2, Replicas(sim, "deployments", "web"));

        Assert.Equal(HttpStatusCode.OK, (await server.Admin.DeleteAsync($"{ns}/persistentvolumeclaims/data-postgres-0?dryRun=true")).StatusCode);
        Assert.NotNull(sim.Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0"));

        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=k8s.scale");
        Assert.True(audit.GetProperty("items")[0].GetProperty("dry_run").GetBoolean());
    }

    [Fact]
    public async Task Roles_and_both_allowlists_are_enforced_and_refusals_audited()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim, namespaces: ["prod", "staging"]);
        var viewer = server.Client((await server.CreateKeyAsync("vera", "viewer")).Key);
        var stagingOnly = server.Client((await server.CreateKeyAsync("sam", "operator", ["staging"])).Key);
        const string cluster = "/api/v1/clusters/kind-prod/namespaces";

        // viewer: may list, may not mutate
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync($"{cluster}/prod/deployments")).StatusCode);
        await Problem.AssertAsync(await viewer.PostAsJsonAsync($"{cluster}/prod/deployments/web/scale", new { replicas = 1 }), HttpStatusCode.Forbidden);

        // a namespace outside the cluster's allowlist
        var detail = await Problem.AssertAsync(await server.Admin.PostAsJsonAsync($"{cluster}/kube-system/deployments/web/scale", new { replicas = 1 }), HttpStatusCode.Forbidden);
        Assert.Contains("allowlist of cluster 'kind-prod'", detail, StringComparison.Ordinal);

        // a namespace outside the principal's allowlist
        detail = await Problem.AssertAsync(await stagingOnly.PostAsJsonAsync($"{cluster}/prod/deployments/web/scale", new { replicas = 1 }), HttpStatusCode.Forbidden);
        Assert.Contains("sam's namespace allowlist", detail, StringComparison.Ordinal);
        await Problem.AssertAsync(await stagingOnly.GetAsync($"{cluster}/prod/pods"), HttpStatusCode.Forbidden);

        Assert.Equal(2, Replicas(sim, "deployments", "web"));
        var denied = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=k8s.scale");
        Assert.Equal(3, denied.GetProperty("items").EnumerateArray().Count(e => e.GetProperty("status").GetString() == "denied"));
    }

    [Theory]
    [InlineData("/api/v1/clusters/kind-prod/namespaces/prod/deployments/web/scale", "{\"replicas\":101}", "replicas")]
    [InlineData("/api/v1/clusters/kind-prod/namespaces/prod/deployments/web/scale", "{\"replicas\":-1}", "replicas")]
    [InlineData("/api/v1/clusters/kind-prod/namespaces/Prod/deployments/web/scale", "{\"replicas\":1}", "namespace")]
    [InlineData("/api/v1/clusters/kind-prod/namespaces/prod/deployments/web_1/scale", "{\"replicas\":1}", "name")]
    [InlineData("/api/v1/clusters/KIND/namespaces/prod/deployments/web/scale", "{\"replicas\":1}", "cluster")]
    [InlineData("/api/v1/clusters/kind-prod/namespaces/prod/deployments/..%2F..%2Fetc/scale", "{\"replicas\":1}", "name")]
    [InlineData("/api/v1/clusters/kind-prod/namespaces/prod';drop/deployments/web/scale", "{\"replicas\":1}", "namespace")]
    public async Task Invalid_names_and_replicas_are_400_naming_the_field(string path, string body, string field)
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var detail = await Problem.AssertAsync(
            await server.Admin.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.StartsWith(field + ":", detail, StringComparison.Ordinal);
        Assert.Equal(2, Replicas(sim, "deployments", "web"));
    }

    [Fact]
    public async Task Kubernetes_errors_come_back_with_the_api_servers_message()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        var detail = await Problem.AssertAsync(
            await server.Admin.PostAsJsonAsync("/api/v1/clusters/kind-prod/namespaces/prod/deployments/nope/scale", new { replicas = 1 }), HttpStatusCode.NotFound);
        Assert.Contains("nope", detail, StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/clusters/kind-prod/namespaces/prod/pods/ghost"), HttpStatusCode.NotFound);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/clusters/other/namespaces/prod/pods"), HttpStatusCode.NotFound);

        // Calls the cluster refused are timed; a cluster that is not registered never reaches a call, nor a label.
        var metrics = await server.Client().GetStringAsync("/metrics");
        Assert.Contains("opsgate_cluster_call_duration_seconds_count{action=\"k8s.scale\",cluster=\"kind-prod\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("opsgate_cluster_call_duration_seconds_count{action=\"k8s.delete\",cluster=\"kind-prod\"} 1", metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("cluster=\"other\"", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apiops_routes_act_on_the_default_cluster()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim, name: "default", namespaces: ["prod"]);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsJsonAsync("/ops/namespaces/prod/deployments/web/scale", new { replicas = 4 })).StatusCode);
        Assert.Equal(4, Replicas(sim, "deployments", "web"));
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsJsonAsync("/ops/namespaces/prod/statefulsets/postgres/scale", new { replicas = 2 })).StatusCode);
        Assert.Equal(2, Replicas(sim, "statefulsets", "postgres"));
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.DeleteAsync("/ops/namespaces/prod/persistentvolumeclaims/data-postgres-0")).StatusCode);
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/ops/namespaces/staging/pods/x"), HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_stopped_cluster_answers_502_or_504_within_the_timeout_naming_the_cluster()
    {
        var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Kubernetes:RequestTimeout=00:00:02"]);
        await RegisterAsync(server, sim);
        await sim.DisposeAsync();

        var watch = Stopwatch.StartNew();
        var response = await server.Admin.PostAsJsonAsync("/api/v1/clusters/kind-prod/namespaces/prod/deployments/web/scale", new { replicas = 1 });
        watch.Stop();
        Assert.True(response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout, $"{response.StatusCode}");
        var detail = await Problem.AssertAsync(response, response.StatusCode);
        Assert.Contains("kind-prod", detail, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"took {watch.Elapsed}");

        var status = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/clusters/kind-prod/status");
        Assert.Equal("unreachable", status.GetProperty("status").GetString());
        var metrics = await server.Client().GetStringAsync("/metrics");
        Assert.Contains("opsgate_cluster_up{cluster=\"kind-prod\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("opsgate_cluster_call_duration_seconds_count{action=\"k8s.scale\",cluster=\"kind-prod\"} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_certificates_over_tls_work()
    {
        await using var sim = await StartSimAsync(new KubeSimOptions { Tls = true, ClientCertificates = true, Token = null });
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        Assert.Contains("client-certificate-data", sim.KubeconfigYaml(), StringComparison.Ordinal);
        await RegisterAsync(server, sim);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsJsonAsync("/api/v1/clusters/kind-prod/namespaces/prod/deployments/web/scale", new { replicas = 1 })).StatusCode);
        Assert.Equal(1, Replicas(sim, "deployments", "web"));
    }

    [Fact]
    public async Task A_configured_cluster_with_an_exec_plugin_works_and_an_uploaded_one_is_refused()
    {
        await using var sim = await StartSimAsync();
        using var dir = new TempDir();
        var plugin = Path.Combine(dir.Path, "token-plugin.sh");
        await File.WriteAllTextAsync(plugin, """
            #!/bin/sh
            printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$SIM_TOKEN"
            """);
        File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var kubeconfig = Path.Combine(dir.Path, "kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, $$"""
            apiVersion: v1
            kind: Config
            current-context: sim
            clusters:
            - name: sim
              cluster:
                server: "{{sim.BaseAddress}}"
            users:
            - name: plugin
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: {{plugin}}
                  env:
                  - name: SIM_TOKEN
                    value: kubesim-token
            contexts:
            - name: sim
              context:
                cluster: sim
                user: plugin
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [$"--Clusters:lab:Kubeconfig={kubeconfig}", "--Clusters:lab:AllowedNamespaces=prod"]);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsJsonAsync("/api/v1/clusters/lab/namespaces/prod/deployments/web/scale", new { replicas = 5 })).StatusCode);
        Assert.Equal(5, Replicas(sim, "deployments", "web"));
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/clusters/lab"), HttpStatusCode.Conflict);

        var detail = await Problem.AssertAsync(await server.Admin.PostAsJsonAsync("/api/v1/clusters", new
        {
            name = "uploaded",
            kubeconfig = Convert.ToBase64String(Encoding.UTF8.GetBytes(await File.ReadAllTextAsync(kubeconfig))),
            allowed_namespaces = new[] { "prod" },
        }, OpsgateServer.Json), HttpStatusCode.BadRequest);
        Assert.Contains("exec credential plugin", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Removing_a_cluster_forgets_it_and_its_stored_kubeconfig()
    {
        await using var sim = await StartSimAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await RegisterAsync(server, sim);
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/clusters/kind-prod")).StatusCode);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/clusters/kind-prod/status"), HttpStatusCode.NotFound);
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/clusters/kind-prod"), HttpStatusCode.NotFound);
        var store = server.App.Services.GetRequiredService<Opsgate.Server.Secrets.ISecretStore>();
        Assert.Null(await store.GetAsync("cluster/kind-prod/kubeconfig", default));
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "condition not met within 10 s");
            await Task.Delay(20);
        }
    }
}
