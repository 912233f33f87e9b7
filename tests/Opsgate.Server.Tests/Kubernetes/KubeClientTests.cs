using System.Diagnostics;
using System.Text.Json.Nodes;
using KubeSim;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Tests.Kubernetes;

/// <summary>
/// <see cref="KubeClient"/> on its own against KubeSim: typed calls for every resource Opsgate touches, the
/// scale subresource, watches and Status errors. Connection behaviour (timeouts, retries, TLS, credentials)
/// is in KubeClientTests.Connection.cs.
/// </summary>
public sealed partial class KubeClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private const string Lab = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: lab}
        """;

    private static async Task<KubeSimServer> StartSimAsync(string? manifests = null, KubeSimOptions? options = null) =>
        await KubeSimServer.StartAsync((options ?? new KubeSimOptions()) with
        {
            ManifestsYaml = manifests is null ? Lab : Lab + "\n---\n" + manifests,
            ReadyAfter = TimeSpan.FromMilliseconds(50),
        });

    private static KubeClient ClientFor(string kubeconfigYaml, TimeSpan? timeout = null, string cluster = "lab", TimeProvider? time = null) =>
        new(cluster, Kubeconfig.Parse(kubeconfigYaml).Resolve(null, trusted: true), timeout ?? Patience, time ?? TimeProvider.System);

    private static KubeClient ClientFor(KubeSimServer sim, TimeSpan? timeout = null) => ClientFor(sim.KubeconfigYaml(), timeout);

    private static string? Str(JsonNode? node, params string[] path)
    {
        foreach (var key in path) node = node is JsonArray array ? array[int.Parse(key, System.Globalization.CultureInfo.InvariantCulture)] : node?[key];
        return node is JsonValue value && value.TryGetValue<string>(out var s) ? s : node?.ToJsonString();
    }

    private static List<string> Names(JsonObject list) =>
        list["items"]!.AsArray().Select(i => Str(i, "metadata", "name")!).Order(StringComparer.Ordinal).ToList();

    private static JsonObject Obj(string json) => JsonNode.Parse(json)!.AsObject();

    /// <summary>
    /// One resource type: a manifest for (name, team label) and, where the type has lists that strategic merge
    /// patch merges by key, a patch plus what only a strategic merge (not a JSON merge) leaves behind.
    /// </summary>
    private sealed record ResourceCase(
        KubeResource Resource,
        Func<string, string, JsonObject> Manifest,
        JsonObject? StrategicPatch = null,
        Func<JsonObject, string>? StrategicView = null,
        string? AfterStrategic = null,
        string? AfterMerge = null);

    /// <summary>A manifest for a name and a team label: <c>$name</c> and <c>$team</c> in <paramref name="json"/> are replaced.</summary>
    private static Func<string, string, JsonObject> Manifest(string json) =>
        (name, team) => Obj(json.Replace("$name", name, StringComparison.Ordinal).Replace("$team", team, StringComparison.Ordinal));

    /// <summary>image and ports of container "app": a strategic merge keeps the ports, a JSON merge replaces the whole list.</summary>
    private static Func<JsonObject, string> ContainerView(params string[] podSpec) =>
        o => $"{Str(o, [.. podSpec, "containers", "0", "image"])} ports={Str(o, [.. podSpec, "containers", "0", "ports"]) ?? "none"}";

    private const string KeptPorts = """nginx:1.28 ports=[{"containerPort":8080}]""";
    private const string LostPorts = "nginx:1.28 ports=none";

    private static readonly Dictionary<string, ResourceCase> Cases = new()
    {
        ["namespaces"] = new(KubeResource.Namespaces,
            Manifest("""{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"$name","labels":{"team":"$team"}}}""")),
        ["pods"] = new(KubeResource.Pods,
            Manifest("""
                {"apiVersion":"v1","kind":"Pod","metadata":{"name":"$name","labels":{"team":"$team"}},
                 "spec":{"containers":[{"name":"app","image":"nginx:1.27","ports":[{"containerPort":8080}]}]}}
                """),
            Obj("""{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}"""), ContainerView("spec"), KeptPorts, LostPorts),
        ["persistentvolumeclaims"] = new(KubeResource.PersistentVolumeClaims,
            Manifest("""
                {"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"$name","labels":{"team":"$team"}},
                 "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}
                """)),
        ["deployments"] = new(KubeResource.Deployments,
            Manifest("""
                {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"$name","labels":{"team":"$team"}},
                 "spec":{"replicas":1,"selector":{"matchLabels":{"app":"$name"}},
                         "template":{"metadata":{"labels":{"app":"$name"}},
                                     "spec":{"containers":[{"name":"app","image":"nginx:1.27","ports":[{"containerPort":8080}]}]}}}}
                """),
            Obj("""{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}"""),
            ContainerView("spec", "template", "spec"), KeptPorts, LostPorts),
        ["statefulsets"] = new(KubeResource.StatefulSets,
            Manifest("""
                {"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"$name","labels":{"team":"$team"}},
                 "spec":{"replicas":1,"serviceName":"$name","selector":{"matchLabels":{"app":"$name"}},
                         "template":{"metadata":{"labels":{"app":"$name"}},
                                     "spec":{"containers":[{"name":"app","image":"nginx:1.27","ports":[{"containerPort":8080}]}]}}}}
                """),
            Obj("""{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}"""),
            ContainerView("spec", "template", "spec"), KeptPorts, LostPorts),
        ["serviceaccounts"] = new(KubeResource.ServiceAccounts,
            Manifest("""{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"$name","labels":{"team":"$team"}},"secrets":[{"name":"token-a"}]}"""),
            Obj("""{"secrets":[{"name":"token-b"}]}"""), o => Str(o, "secrets")!,
            """[{"name":"token-a"},{"name":"token-b"}]""", """[{"name":"token-b"}]"""),
        ["secrets"] = new(KubeResource.Secrets,
            Manifest("""{"apiVersion":"v1","kind":"Secret","metadata":{"name":"$name","labels":{"team":"$team"}},"stringData":{"password":"s3cret"}}""")),
        ["roles"] = new(KubeResource.Roles,
            Manifest("""
                {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"$name","labels":{"team":"$team"}},
                 "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]}
                """)),
        ["rolebindings"] = new(KubeResource.RoleBindings,
            Manifest("""
                {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"$name","labels":{"team":"$team"}},
                 "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"},
                 "subjects":[{"kind":"ServiceAccount","name":"default","namespace":"lab"}]}
                """)),
    };

    [Fact]
    public void Every_resource_type_has_a_case()
    {
        var declared = typeof(KubeResource).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Select(f => ((KubeResource)f.GetValue(null)!).Plural).Order(StringComparer.Ordinal);
        Assert.Equal(declared, Cases.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("namespaces")]
    [InlineData("pods")]
    [InlineData("persistentvolumeclaims")]
    [InlineData("deployments")]
    [InlineData("statefulsets")]
    [InlineData("serviceaccounts")]
    [InlineData("secrets")]
    [InlineData("roles")]
    [InlineData("rolebindings")]
    public async Task Create_get_list_patch_and_delete_work_and_dry_runs_change_nothing(string plural)
    {
        var c = Cases[plural];
        var r = c.Resource;
        var ns = r.Namespaced ? "lab" : null;
        await using var sim = await StartSimAsync();
        using var client = ClientFor(sim);
        JsonObject? Stored(string name) => sim.Store.Get(r.ApiVersion, r.Plural, ns, name);

        var dry = await client.CreateAsync(r, ns, c.Manifest("alpha", "a"), dryRun: true, default);
        Assert.Equal("alpha", Str(dry, "metadata", "name"));
        Assert.Null(Stored("alpha"));

        var created = await client.CreateAsync(r, ns, c.Manifest("alpha", "a"), dryRun: false, default);
        Assert.Equal(Str(Stored("alpha"), "metadata", "uid"), Str(created, "metadata", "uid"));
        await client.CreateAsync(r, ns, c.Manifest("beta", "b"), dryRun: false, default);

        var got = await client.GetAsync(r, ns, "alpha", default);
        Assert.Equal(r.Kind, Str(got, "kind"));
        Assert.Equal(r.ApiVersion, Str(got, "apiVersion"));
        Assert.Equal(Str(created, "metadata", "uid"), Str(got, "metadata", "uid"));

        Assert.Equal(["alpha"], Names(await client.ListAsync(r, ns, default, labelSelector: "team=a")));
        Assert.Equal(["alpha", "beta"], Names(await client.ListAsync(r, ns, default, labelSelector: "team in (a,b)")));
        Assert.Equal(["beta"], Names(await client.ListAsync(r, ns, default, labelSelector: "team,team!=a")));

        var patched = await client.PatchAsync(r, ns, "alpha", Obj("""{"metadata":{"labels":{"stage":"patched"}}}"""), PatchType.Merge, dryRun: false, default);
        Assert.Equal("patched", Str(patched, "metadata", "labels", "stage"));
        Assert.Equal("a", Str(Stored("alpha"), "metadata", "labels", "team"));
        Assert.Equal(["alpha"], Names(await client.ListAsync(r, ns, default, labelSelector: "stage=patched")));

        if (c.StrategicPatch is { } strategic)
        {
            // The same body as a JSON merge patch (dry run) replaces the list; as a strategic merge it merges by key.
            var asMerge = await client.PatchAsync(r, ns, "alpha", strategic, PatchType.Merge, dryRun: true, default);
            Assert.Equal(c.AfterMerge, c.StrategicView!(asMerge));
            await client.PatchAsync(r, ns, "alpha", strategic, PatchType.StrategicMerge, dryRun: false, default);
            Assert.Equal(c.AfterStrategic, c.StrategicView!(Stored("alpha")!));
        }

        // (Controllers keep writing status, so the resourceVersion may move; the object must stay, not terminating.)
        var dryDeleted = await client.DeleteAsync(r, ns, "alpha", dryRun: true, default);
        Assert.Equal("alpha", Str(dryDeleted, "metadata", "name"));
        Assert.Equal(Str(created, "metadata", "uid"), Str(Stored("alpha"), "metadata", "uid"));
        Assert.Null(Str(Stored("alpha"), "metadata", "deletionTimestamp"));

        await client.DeleteAsync(r, ns, "alpha", dryRun: false, default);
        await sim.Store.WaitUntilAsync(_ => Stored("alpha") is null, Patience);
        Assert.NotNull(Stored("beta"));
        var e = await Assert.ThrowsAsync<KubeApiException>(() => client.GetAsync(r, ns, "alpha", default));
        Assert.Equal(404, e.StatusCode);
    }

    private static string Web(int replicas) => $$$"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: lab}
        spec:
          replicas: {{{replicas}}}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: web, image: nginx:1.27}]}
        """;

    private static readonly string Workloads = Web(1) + """

        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db, namespace: lab}
        spec:
          replicas: 1
          serviceName: db
          selector: {matchLabels: {app: db}}
          template:
            metadata: {labels: {app: db}}
            spec: {containers: [{name: postgres, image: postgres:16}]}
          volumeClaimTemplates:
          - metadata: {name: data}
            spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
        """;

    [Fact]
    public async Task Scale_subresource_sets_replicas_and_the_controllers_follow()
    {
        await using var sim = await StartSimAsync(Workloads);
        using var client = ClientFor(sim);
        long? Replicas(string plural, string name) => sim.Store.Get("apps/v1", plural, "lab", name)?["spec"]?["replicas"]?.GetValue<long>();

        var dry = await client.ScaleAsync(KubeResource.Deployments, "lab", "web", 3, dryRun: true, default);
        Assert.Equal("Scale", Str(dry, "kind"));
        Assert.Equal("3", Str(dry, "spec", "replicas"));
        Assert.Equal(1, Replicas("deployments", "web"));

        var scaled = await client.ScaleAsync(KubeResource.Deployments, "lab", "web", 3, dryRun: false, default);
        Assert.Equal("3", Str(scaled, "spec", "replicas"));
        Assert.Equal(3, Replicas("deployments", "web"));
        await sim.Store.WaitUntilAsync(s => s.List("v1", "pods", "lab", "app=web").Count == 3, Patience);

        await client.ScaleAsync(KubeResource.StatefulSets, "lab", "db", 2, dryRun: false, default);
        await sim.Store.WaitUntilAsync(s => s.Get("v1", "pods", "lab", "db-1") is not null && s.Get("v1", "persistentvolumeclaims", "lab", "data-db-1") is not null, Patience);
        await client.ScaleAsync(KubeResource.StatefulSets, "lab", "db", 0, dryRun: false, default);
        await sim.Store.WaitUntilAsync(s => s.List("v1", "pods", "lab", "app=db").Count == 0, Patience);
        Assert.NotNull(sim.Store.Get("v1", "persistentvolumeclaims", "lab", "data-db-0"));

        var invalid = await Assert.ThrowsAsync<KubeApiException>(() => client.ScaleAsync(KubeResource.Deployments, "lab", "web", -1, dryRun: false, default));
        Assert.Equal((422, "Invalid"), (invalid.StatusCode, invalid.Reason));
        Assert.Equal("Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0", invalid.Message);
        var missing = await Assert.ThrowsAsync<KubeApiException>(() => client.ScaleAsync(KubeResource.StatefulSets, "lab", "nope", 1, dryRun: false, default));
        Assert.Equal("statefulsets.apps \"nope\" not found", missing.Message);
    }

    [Fact]
    public async Task Restart_stamps_the_pod_template_and_a_dry_run_does_not()
    {
        await using var sim = await StartSimAsync(Workloads);
        using var client = ClientFor(sim);
        string? RestartedAt() => Str(sim.Store.Get("apps/v1", "deployments", "lab", "web"), "spec", "template", "metadata", "annotations", "kubectl.kubernetes.io/restartedAt");
        var at = new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero);

        await client.RestartAsync(KubeResource.Deployments, "lab", "web", at, dryRun: true, default);
        Assert.Null(RestartedAt());
        await client.RestartAsync(KubeResource.Deployments, "lab", "web", at, dryRun: false, default);
        Assert.Equal("2025-03-04T05:06:07Z", RestartedAt());
    }

    [Fact]
    public async Task Watch_delivers_added_modified_deleted_in_order_for_the_pods_of_a_scaled_deployment()
    {
        await using var sim = await StartSimAsync(Web(replicas: 0));
        using var client = ClientFor(sim);
        var start = await client.ListAsync(KubeResource.Pods, "lab", default, labelSelector: "app=web");
        Assert.Empty(start["items"]!.AsArray());

        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var events = new List<(string Type, string Pod, long ResourceVersion, bool Ready)>();
        await client.ScaleAsync(KubeResource.Deployments, "lab", "web", 2, dryRun: false, default);
        var scaledDown = false;
        await foreach (var e in client.WatchAsync(KubeResource.Pods, "lab", bounded.Token, labelSelector: "app=web", resourceVersion: Str(start, "metadata", "resourceVersion")))
        {
            var ready = e.Object["status"]?["conditions"]?.AsArray().Any(c => Str(c, "type") == "Ready" && Str(c, "status") == "True") == true;
            events.Add((e.Type, Str(e.Object, "metadata", "name")!, long.Parse(Str(e.Object, "metadata", "resourceVersion")!, System.Globalization.CultureInfo.InvariantCulture), ready));
            var lastState = events.GroupBy(x => x.Pod).Select(g => g.Last()).ToList();
            if (!scaledDown && lastState.Count(x => x.Ready && x.Type != "DELETED") == 2)
            {
                scaledDown = true;
                await client.ScaleAsync(KubeResource.Deployments, "lab", "web", 0, dryRun: false, default);
            }
            if (scaledDown && lastState.Count(x => x.Type == "DELETED") == 2)
                break;
        }

        Assert.True(scaledDown, "the pods never became Ready: " + string.Join(", ", events));
        Assert.Equal(events.Select(e => e.ResourceVersion).Order(), events.Select(e => e.ResourceVersion));
        var byPod = events.GroupBy(e => e.Pod).ToList();
        Assert.Equal(2, byPod.Count);
        foreach (var pod in byPod)
        {
            var types = pod.Select(e => e.Type).ToList();
            Assert.True(types[0] == "ADDED" && types[^1] == "DELETED" && types.Count >= 3 && types[1..^1].All(t => t == "MODIFIED"),
                $"{pod.Key}: {string.Join(" ", types)}");
        }
    }

    [Fact]
    public async Task Cancelling_the_token_ends_a_waiting_watch_at_once()
    {
        await using var sim = await StartSimAsync();
        using var client = ClientFor(sim);
        using var cts = new CancellationTokenSource();
        await using var watch = client.WatchAsync(KubeResource.Secrets, "lab", cts.Token, labelSelector: "watched=yes").GetAsyncEnumerator();
        var first = watch.MoveNextAsync().AsTask();
        sim.Store.Apply("""{"apiVersion":"v1","kind":"Secret","metadata":{"name":"one","namespace":"lab","labels":{"watched":"yes"}}}""");
        Assert.True(await first.WaitAsync(Patience));
        Assert.Equal(("ADDED", "one"), (watch.Current.Type, Str(watch.Current.Object, "metadata", "name")));

        // The stream is open and nothing else will change: the next read waits on the server until cancelled.
        var next = watch.MoveNextAsync().AsTask();
        Assert.False(next.IsCompleted);
        var clock = Stopwatch.StartNew();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next.WaitAsync(Patience));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Status_errors_become_KubeApiExceptions_with_the_servers_code_reason_and_message()
    {
        await using var sim = await StartSimAsync(Workloads);
        using var client = ClientFor(sim);

        var notFound = await Assert.ThrowsAsync<KubeApiException>(() => client.GetAsync(KubeResource.Pods, "lab", "ghost", default));
        Assert.Equal((404, "NotFound", "pods \"ghost\" not found"), (notFound.StatusCode, notFound.Reason, notFound.Message));
        notFound = await Assert.ThrowsAsync<KubeApiException>(() => client.DeleteAsync(KubeResource.Secrets, "lab", "ghost", dryRun: false, default));
        Assert.Equal((404, "NotFound", "secrets \"ghost\" not found"), (notFound.StatusCode, notFound.Reason, notFound.Message));

        var exists = await Assert.ThrowsAsync<KubeApiException>(() => client.CreateAsync(KubeResource.Deployments, "lab", Cases["deployments"].Manifest("web", "a"), dryRun: false, default));
        Assert.Equal((409, "AlreadyExists", "deployments.apps \"web\" already exists"), (exists.StatusCode, exists.Reason, exists.Message));

        var web = await client.GetAsync(KubeResource.Deployments, "lab", "web", default);
        // An update that carries the resourceVersion it read is refused once someone else has written since.
        var staleVersion = Str(web, "metadata", "resourceVersion");
        await client.PatchAsync(KubeResource.Deployments, "lab", "web", Obj("""{"metadata":{"labels":{"by":"someone-else"}}}"""), PatchType.Merge, dryRun: false, default);
        var conflict = await Assert.ThrowsAsync<KubeApiException>(() => client.PatchAsync(KubeResource.Deployments, "lab", "web",
            new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = staleVersion, ["labels"] = new JsonObject { ["by"] = "me" } } }, PatchType.Merge, dryRun: false, default));
        Assert.Equal((409, "Conflict"), (conflict.StatusCode, conflict.Reason));
        Assert.Equal("Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again", conflict.Message);
        Assert.Equal("someone-else", Str(sim.Store.Get("apps/v1", "deployments", "lab", "web"), "metadata", "labels", "by"));

        // A JSON patch guarded by a test op on the stale resourceVersion fails as the apiserver fails it: 422.
        var guarded = await Assert.ThrowsAsync<KubeApiException>(() => client.PatchAsync(KubeResource.Deployments, "lab", "web", JsonNode.Parse($$$"""
            [{"op":"test","path":"/metadata/resourceVersion","value":"{{{staleVersion}}}"},{"op":"replace","path":"/spec/replicas","value":5}]
            """)!, PatchType.Json, dryRun: false, default));
        Assert.Equal((422, "Invalid"), (guarded.StatusCode, guarded.Reason));
        Assert.Contains("testing value /metadata/resourceVersion failed", guarded.Message, StringComparison.Ordinal);
        Assert.Equal(1, sim.Store.Get("apps/v1", "deployments", "lab", "web")?["spec"]?["replicas"]?.GetValue<long>());

        var bad = Cases["deployments"].Manifest("bad", "a");
        bad["spec"]!["template"]!["metadata"]!["labels"]!["app"] = "other";
        var invalid = await Assert.ThrowsAsync<KubeApiException>(() => client.CreateAsync(KubeResource.Deployments, "lab", bad, dryRun: false, default));
        Assert.Equal((422, "Invalid"), (invalid.StatusCode, invalid.Reason));
        Assert.Equal("Deployment.apps \"bad\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`", invalid.Message);
        Assert.Null(sim.Store.Get("apps/v1", "deployments", "lab", "bad"));

        var badWatch = await Assert.ThrowsAsync<KubeApiException>(async () =>
        {
            await foreach (var _ in client.WatchAsync(KubeResource.Pods, "lab", default, resourceVersion: "yesterday")) { }
        });
        Assert.Equal((400, "BadRequest", "invalid resource version: yesterday"), (badWatch.StatusCode, badWatch.Reason, badWatch.Message));
    }
}
