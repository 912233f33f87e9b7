using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using KubeSim.Store;
using KubeSim.Tests.Infrastructure;

namespace KubeSim.Tests;

/// <summary>The REST API directly: concurrency, dry run, watch, selectors, statefulset claims, Status errors.</summary>
public sealed class RestApiTests : IAsyncLifetime
{
    private KubeSimServer _server = null!;
    private HttpClient _http = null!;

    private KubeStore Store => _server.Store;

    public async Task InitializeAsync()
    {
        _server = await Sim.StartAsync();
        _http = Client(_server, "kubesim-token");
        await _server.WaitSettledAsync();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private static HttpClient Client(KubeSimServer server, string? token)
    {
        var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private const string Web = "/apis/apps/v1/namespaces/prod/deployments/web";

    [Fact]
    public async Task Update_with_a_stale_resourceVersion_is_a_409_conflict()
    {
        var web = await GetAsync(Web);
        var first = (JsonObject)web.DeepClone();
        first["spec"]!["replicas"] = 4;
        var updated = await SendAsync(HttpMethod.Put, Web, first, HttpStatusCode.OK);
        Assert.NotEqual(web.Str("metadata", "resourceVersion"), updated.Str("metadata", "resourceVersion"));

        var stale = (JsonObject)web.DeepClone();
        stale["spec"]!["replicas"] = 5;
        var status = await SendAsync(HttpMethod.Put, Web, stale, HttpStatusCode.Conflict);

        AssertStatus(status, 409, "Conflict");
        Assert.Equal("Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again", status.Str("message"));
        Assert.Equal(4, Store.Get("apps/v1", "deployments", "prod", "web").Long("spec", "replicas"));
    }

    [Fact]
    public async Task Replacing_with_the_original_manifest_keeps_defaults_and_rolls_nothing()
    {
        var pods = Sim.ActivePods(Store, "app=web").Select(p => p.Name()).Order().ToList();

        var replaced = await SendAsync(HttpMethod.Put, Web, Manifests.Parse(Sim.Seed)[1], HttpStatusCode.OK);

        Assert.Equal(1, replaced.Long("metadata", "generation"));
        Assert.Equal("RollingUpdate", replaced.Str("spec", "strategy", "type"));
        Assert.Equal("Always", replaced.At("spec", "template", "spec", "restartPolicy")?.GetValue<string>());
        Assert.Equal(pods, Sim.ActivePods(Store, "app=web").Select(p => p.Name()).Order().ToList());
    }

    [Fact]
    public async Task DryRun_All_validates_and_answers_but_changes_nothing()
    {
        // The controllers make the seeded pods ready shortly after start; that must not count as a change made here.
        await _server.WaitSettledAsync();
        await _server.WaitQuietAsync();
        var before = Store.ResourceVersion;
        var newDeployment = Manifests.Parse(Sim.Seed)[1];
        newDeployment.Meta()["name"] = "web2";

        var created = await SendAsync(HttpMethod.Post, "/apis/apps/v1/namespaces/prod/deployments?dryRun=All", newDeployment, HttpStatusCode.Created);
        Assert.Equal("web2", created.Name());
        Assert.NotEmpty(created.Uid());

        var patched = await SendAsync(HttpMethod.Patch, Web + "?dryRun=All", new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 7 } }, HttpStatusCode.OK, "application/merge-patch+json");
        Assert.Equal(7, patched.Long("spec", "replicas"));
        var scaled = await SendAsync(HttpMethod.Patch, Web + "/scale?dryRun=All", new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 9 } }, HttpStatusCode.OK, "application/merge-patch+json");
        Assert.Equal(9, scaled.Long("spec", "replicas"));
        await SendAsync(HttpMethod.Delete, Web + "?dryRun=All", null, HttpStatusCode.OK);

        var invalid = (JsonObject)newDeployment.DeepClone();
        invalid["spec"]!["template"]!["metadata"]!["labels"] = new JsonObject { ["app"] = "other" };
        AssertStatus(await SendAsync(HttpMethod.Post, "/apis/apps/v1/namespaces/prod/deployments?dryRun=All", invalid, (HttpStatusCode)422), 422, "Invalid");

        Assert.Null(Store.Get("apps/v1", "deployments", "prod", "web2"));
        Assert.Equal(2, Store.Get("apps/v1", "deployments", "prod", "web").Long("spec", "replicas"));
        Assert.Equal(before, Store.ResourceVersion);
    }

    [Fact]
    public async Task Watch_streams_added_modified_deleted_in_order_with_resourceVersions()
    {
        var list = await GetAsync("/api/v1/namespaces/prod/configmaps");
        var from = list.Str("metadata", "resourceVersion");
        using var response = await _http.GetAsync($"/api/v1/namespaces/prod/configmaps?watch=true&resourceVersion={from}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        var cm = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "settings" }, ["data"] = new JsonObject { ["a"] = "1" } };
        await SendAsync(HttpMethod.Post, "/api/v1/namespaces/prod/configmaps", cm, HttpStatusCode.Created);
        await SendAsync(HttpMethod.Patch, "/api/v1/namespaces/prod/configmaps/settings", new JsonObject { ["data"] = new JsonObject { ["a"] = "2" } }, HttpStatusCode.OK, "application/merge-patch+json");
        await SendAsync(HttpMethod.Delete, "/api/v1/namespaces/prod/configmaps/settings", null, HttpStatusCode.OK);

        var events = new List<JsonObject>();
        using var timeout = new CancellationTokenSource(Sim.Wait);
        while (events.Count < 3)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("watch ended early");
            events.Add(JsonNode.Parse(line)!.AsObject());
        }
        Assert.Equal(["ADDED", "MODIFIED", "DELETED"], events.Select(e => e.Str("type")));
        Assert.Equal("2", events[1].Str("object", "data", "a"));
        var versions = events.Select(e => long.Parse(e.Str("object", "metadata", "resourceVersion")!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(versions[0] > long.Parse(from!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(versions.Order(), versions);
        Assert.Equal(versions.Count, versions.Distinct().Count());
    }

    [Fact]
    public async Task A_watch_from_before_the_kept_history_is_410_Expired_and_one_within_it_replays_the_changes()
    {
        var from = (await GetAsync("/api/v1/namespaces/prod/configmaps")).Str("metadata", "resourceVersion");
        var cm = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "churn" }, ["data"] = new JsonObject { ["n"] = "0" } };
        await SendAsync(HttpMethod.Post, "/api/v1/namespaces/prod/configmaps", cm, HttpStatusCode.Created);
        string? recent = null;
        for (var i = 1; i <= KubeStore.HistoryCapacity; i++)
        {
            var patch = new JsonObject { ["data"] = new JsonObject { ["n"] = $"{i}" } };
            var updated = await SendAsync(HttpMethod.Patch, "/api/v1/namespaces/prod/configmaps/churn", patch, HttpStatusCode.OK, "application/merge-patch+json");
            if (i == KubeStore.HistoryCapacity - 2)
                recent = updated.Str("metadata", "resourceVersion");
        }

        using var expired = await _http.GetAsync($"/api/v1/namespaces/prod/configmaps?watch=true&resourceVersion={from}");
        Assert.Equal(HttpStatusCode.Gone, expired.StatusCode);
        AssertStatus(JsonNode.Parse(await expired.Content.ReadAsStringAsync())!.AsObject(), 410, "Expired");

        using var response = await _http.GetAsync($"/api/v1/namespaces/prod/configmaps?watch=true&resourceVersion={recent}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(Sim.Wait);
        var replayed = new List<string?>();
        while (replayed.Count < 2)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("watch ended early");
            replayed.Add(JsonNode.Parse(line)!.AsObject().Str("object", "data", "n"));
        }
        Assert.Equal([$"{KubeStore.HistoryCapacity - 1}", $"{KubeStore.HistoryCapacity}"], replayed);
    }

    [Fact]
    public async Task Label_and_field_selectors_filter_lists()
    {
        async Task<List<string>> Names(string query) =>
            (await GetAsync("/api/v1/namespaces/prod/pods?" + query))["items"]!.AsArray().Select(i => i!.AsObject().Name()).ToList();

        Assert.Equal(2, (await Names("labelSelector=app%3Dweb")).Count);
        Assert.Equal(["postgres-0"], await Names("labelSelector=app%3Dpostgres"));
        Assert.Equal(3, (await Names("labelSelector=app+in+(web,postgres)")).Count);
        Assert.Equal(["postgres-0"], await Names("labelSelector=app!%3Dweb"));
        Assert.Empty(await Names("labelSelector=app%3Dweb,!pod-template-hash"));
        Assert.Equal(["postgres-0"], await Names("fieldSelector=metadata.name%3Dpostgres-0"));
        Assert.Equal(3, (await Names("fieldSelector=status.phase%3DRunning")).Count);
        AssertStatus(await SendAsync(HttpMethod.Get, "/api/v1/namespaces/prod/pods?fieldSelector=spec.bogus%3Dx", null, HttpStatusCode.BadRequest), 400, "BadRequest");
    }

    [Fact]
    public async Task Statefulset_scaled_to_zero_keeps_its_claim_and_recreates_a_deleted_one_on_scale_up()
    {
        const string sts = "/apis/apps/v1/namespaces/prod/statefulsets/postgres";
        var claim = Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0")!;
        Assert.Equal("Bound", claim.Str("status", "phase"));

        var scale = await SendAsync(HttpMethod.Patch, sts + "/scale", new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 0 } }, HttpStatusCode.OK, "application/merge-patch+json");
        Assert.Equal("Scale", scale.Str("kind"));
        Assert.Equal("app=postgres", scale.Str("status", "selector"));
        await Store.WaitUntilAsync(s => s.List("v1", "pods", "prod", "app=postgres").Count == 0, Sim.Wait);
        Assert.Equal(claim.Uid(), Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0")!.Uid());

        await SendAsync(HttpMethod.Delete, "/api/v1/namespaces/prod/persistentvolumeclaims/data-postgres-0", null, HttpStatusCode.OK);
        await Store.WaitForAsync("v1", "persistentvolumeclaims", "prod", "data-postgres-0", c => c is null, Sim.Wait);

        var current = await GetAsync(sts + "/scale");
        current["spec"]!["replicas"] = 1;
        await SendAsync(HttpMethod.Put, sts + "/scale", current, HttpStatusCode.OK);
        await _server.WaitSettledAsync();
        var recreated = Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0")!;
        Assert.NotEqual(claim.Uid(), recreated.Uid());
        Assert.Equal("Bound", recreated.Str("status", "phase"));
        var pod = Store.Get("v1", "pods", "prod", "postgres-0")!;
        Assert.Contains(pod.At("spec", "volumes")!.AsArray(), v => v.Str("persistentVolumeClaim", "claimName") == "data-postgres-0");
    }

    [Fact]
    public async Task Errors_are_Status_objects_with_matching_codes()
    {
        AssertStatus(await SendAsync(HttpMethod.Get, "/apis/apps/v1/namespaces/prod/deployments/nope", null, HttpStatusCode.NotFound), 404, "NotFound");
        var again = Manifests.Parse(Sim.Seed)[1];
        AssertStatus(await SendAsync(HttpMethod.Post, "/apis/apps/v1/namespaces/prod/deployments", again, HttpStatusCode.Conflict), 409, "AlreadyExists");
        var invalid = new JsonObject { ["metadata"] = new JsonObject { ["name"] = "Bad_Name" }, ["spec"] = new JsonObject() };
        var status = await SendAsync(HttpMethod.Post, "/apis/apps/v1/namespaces/prod/deployments", invalid, (HttpStatusCode)422);
        AssertStatus(status, 422, "Invalid");
        Assert.StartsWith("Deployment.apps \"Bad_Name\" is invalid:", status.Str("message"));
        Assert.NotEmpty(status.At("details", "causes")!.AsArray());

        using var anonymous = Client(_server, null);
        using var response = await anonymous.GetAsync("/api/v1/namespaces/prod/pods");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        AssertStatus(JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject(), 401, "Unauthorized");
    }

    [Fact]
    public async Task Discovery_version_and_health_are_served()
    {
        Assert.Equal("v1.32.0-kubesim", (await GetAsync("/version")).Str("gitVersion"));
        Assert.Equal("ok", await _http.GetStringAsync("/healthz"));
        Assert.Equal("v1", (await GetAsync("/api"))["versions"]![0]!.GetValue<string>());
        var groups = (await GetAsync("/apis"))["groups"]!.AsArray().Select(g => g.Str("name")).ToList();
        Assert.Contains("apps", groups);
        Assert.Contains("rbac.authorization.k8s.io", groups);
        var apps = (await GetAsync("/apis/apps/v1"))["resources"]!.AsArray();
        var deploymentScale = apps.Single(r => r.Str("name") == "deployments/scale");
        Assert.Equal("Scale", deploymentScale.Str("kind"));
        Assert.Equal("autoscaling", deploymentScale.Str("group"));
        var core = (await GetAsync("/api/v1"))["resources"]!.AsArray().Select(r => r.Str("name")).ToList();
        Assert.Contains("persistentvolumeclaims", core);
        Assert.Contains("serviceaccounts", core);
        Assert.Contains("secrets", core);
    }

    [Fact]
    public async Task Strategic_merge_patch_merges_containers_and_env_by_name()
    {
        var patch = JsonNode.Parse("""
            {"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"A","value":"1"}]},{"name":"sidecar","image":"busybox:1"}]}}}}
            """)!.AsObject();
        await SendAsync(HttpMethod.Patch, Web, patch, HttpStatusCode.OK, "application/strategic-merge-patch+json");
        var second = JsonNode.Parse("""
            {"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"B","value":"2"},{"name":"A","$patch":"delete"}]}]}}}}
            """)!.AsObject();
        var result = await SendAsync(HttpMethod.Patch, Web, second, HttpStatusCode.OK, "application/strategic-merge-patch+json");

        var containers = result.At("spec", "template", "spec", "containers")!.AsArray();
        Assert.Equal(["web", "sidecar"], containers.Select(c => c.Str("name")));
        Assert.Equal("nginx:1.27", containers[0].Str("image"));
        Assert.Equal(["B"], containers[0]!["env"]!.AsArray().Select(e => e.Str("name")));
        Assert.Equal(3, result.Long("metadata", "generation"));

        var jsonPatch = JsonNode.Parse("""[{"op":"replace","path":"/spec/replicas","value":3}]""")!;
        var patched = await SendAsync(HttpMethod.Patch, Web, jsonPatch, HttpStatusCode.OK, "application/json-patch+json");
        Assert.Equal(3, patched.Long("spec", "replicas"));
    }

    [Fact]
    public async Task Deleting_a_pod_is_graceful_and_the_watch_sees_it_terminate()
    {
        var pod = Sim.ActivePods(Store, "app=web")[0];
        using var response = await _http.GetAsync($"/api/v1/namespaces/prod/pods?watch=1&fieldSelector=metadata.name%3D{pod.Name()}&resourceVersion={Store.ResourceVersion}", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        var deleted = await SendAsync(HttpMethod.Delete, $"/api/v1/namespaces/prod/pods/{pod.Name()}", null, HttpStatusCode.OK);
        Assert.NotNull(deleted.Str("metadata", "deletionTimestamp"));

        using var timeout = new CancellationTokenSource(Sim.Wait);
        var modified = JsonNode.Parse((await reader.ReadLineAsync(timeout.Token))!)!;
        var gone = JsonNode.Parse((await reader.ReadLineAsync(timeout.Token))!)!;
        Assert.Equal("MODIFIED", modified.Str("type"));
        Assert.NotNull(modified.Str("object", "metadata", "deletionTimestamp"));
        Assert.Equal("DELETED", gone.Str("type"));
        await _server.WaitSettledAsync();
    }

    [Fact]
    public async Task Service_account_tokens_from_TokenRequest_and_token_secrets_authenticate()
    {
        await SendAsync(HttpMethod.Post, "/api/v1/namespaces/prod/serviceaccounts", new JsonObject { ["metadata"] = new JsonObject { ["name"] = "robot" } }, HttpStatusCode.Created);

        var request = new JsonObject { ["apiVersion"] = "authentication.k8s.io/v1", ["kind"] = "TokenRequest", ["spec"] = new JsonObject { ["expirationSeconds"] = 3600 } };
        var issued = await SendAsync(HttpMethod.Post, "/api/v1/namespaces/prod/serviceaccounts/robot/token", request, HttpStatusCode.Created);
        Assert.Equal("TokenRequest", issued.Str("kind"));
        using (var robot = Client(_server, issued.Str("status", "token")))
        {
            Assert.Equal(HttpStatusCode.OK, (await robot.GetAsync("/api/v1/namespaces/prod/pods")).StatusCode);
        }

        var secret = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = "robot-token",
                ["annotations"] = new JsonObject { ["kubernetes.io/service-account.name"] = "robot" },
            },
            ["type"] = "kubernetes.io/service-account-token",
        };
        await SendAsync(HttpMethod.Post, "/api/v1/namespaces/prod/secrets", secret, HttpStatusCode.Created);
        var filled = await Store.WaitForAsync("v1", "secrets", "prod", "robot-token", s => s?.Str("data", "token") is not null, Sim.Wait);
        var token = Encoding.UTF8.GetString(Convert.FromBase64String(filled!.Str("data", "token")!));
        Assert.Equal("prod", Encoding.UTF8.GetString(Convert.FromBase64String(filled.Str("data", "namespace")!)));
        using var withSecretToken = Client(_server, token);
        Assert.Equal(HttpStatusCode.OK, (await withSecretToken.GetAsync("/api/v1/namespaces/prod/pods")).StatusCode);

        await SendAsync(HttpMethod.Delete, "/api/v1/namespaces/prod/secrets/robot-token", null, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.Unauthorized, (await withSecretToken.GetAsync("/api/v1/namespaces/prod/pods")).StatusCode);
    }

    private static void AssertStatus(JsonObject status, int code, string reason)
    {
        Assert.Equal("Status", status.Str("kind"));
        Assert.Equal("v1", status.Str("apiVersion"));
        Assert.Equal("Failure", status.Str("status"));
        Assert.Equal(reason, status.Str("reason"));
        Assert.Equal(code, status.Long("code"));
        Assert.False(string.IsNullOrEmpty(status.Str("message")));
    }

    private async Task<JsonObject> GetAsync(string path) => await SendAsync(HttpMethod.Get, path, null, HttpStatusCode.OK);

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, JsonNode? body, HttpStatusCode expected, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} {path}: expected {expected}, got {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }
}
