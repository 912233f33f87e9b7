using System.Text.RegularExpressions;
using KubeSim.Store;
using KubeSim.Tests.Infrastructure;

namespace KubeSim.Tests;

/// <summary>The real kubectl against KubeSim over HTTPS with a bearer token: each command succeeds and the state is what it says.</summary>
public sealed partial class KubectlFidelityTests : IAsyncLifetime
{
    private SimSession _session = null!;

    private KubeSimServer Cluster => _session.Server;

    private Kubectl Cli => _session.Kubectl;

    public async Task InitializeAsync() => _session = await SimSession.StartAsync(new KubeSimOptions { Tls = true });

    public async Task DisposeAsync() => await _session.DisposeAsync();

    [Fact]
    public async Task Get_pods_in_a_namespace_prints_the_pods_table()
    {
        await Cluster.WaitSettledAsync();

        var output = await Cli.SucceedAsync("get", "pods", "-n", "prod");

        var lines = output.Trim().Split('\n');
        Assert.Matches(@"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", lines[0]);
        Assert.Equal(3, lines.Length - 1);
        Assert.Equal(2, lines.Count(l => WebPodRow().IsMatch(l)));
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^postgres-0\s+1/1\s+Running\s+0\s+\d+s$"));
    }

    [Fact]
    public async Task Get_deployments_statefulsets_and_claims_in_all_namespaces()
    {
        await Cluster.WaitSettledAsync();

        var output = await Cli.SucceedAsync("get", "deploy,sts,pvc", "-A");

        Assert.Matches(@"NAMESPACE\s+NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE", output);
        Assert.Matches(@"prod\s+deployment\.apps/web\s+2/2\s+2\s+2\s+\d+s", output);
        Assert.Matches(@"NAMESPACE\s+NAME\s+READY\s+AGE", output);
        Assert.Matches(@"prod\s+statefulset\.apps/postgres\s+1/1\s+\d+s", output);
        Assert.Matches(@"NAMESPACE\s+NAME\s+STATUS\s+VOLUME\s+CAPACITY\s+ACCESS MODES\s+STORAGECLASS\s+AGE", output);
        Assert.Matches(@"prod\s+persistentvolumeclaim/data-postgres-0\s+Bound\s+pvc-[0-9a-f-]+\s+1Gi\s+RWO\s+standard\s+\d+s", output);
    }

    [Fact]
    public async Task Scale_deployment_adds_a_pod_that_turns_ready()
    {
        await Cluster.WaitSettledAsync();

        var output = await Cli.SucceedAsync("scale", "deployment/web", "--replicas=3", "-n", "prod");

        Assert.Equal("deployment.apps/web scaled", output.Trim());
        Assert.Equal(3, Cluster.Store.Get("apps/v1", "deployments", "prod", "web").Long("spec", "replicas"));
        await Cluster.WaitSettledAsync(web: 3);
        Assert.Equal(3, Sim.ActivePods(Cluster.Store, "app=web").Count);
    }

    [Fact]
    public async Task Delete_pod_waits_for_it_and_the_controller_recreates_another()
    {
        await Cluster.WaitSettledAsync();
        var victim = Sim.ActivePods(Cluster.Store, "app=web")[0].Name();

        var output = await Cli.SucceedAsync("delete", "pod", victim, "-n", "prod");

        Assert.Equal($"pod \"{victim}\" deleted", output.Trim());
        Assert.Null(Cluster.Store.Get("v1", "pods", "prod", victim));
        await Cluster.WaitSettledAsync();
        Assert.DoesNotContain(victim, Sim.ActivePods(Cluster.Store, "app=web").Select(p => p.Name()));
    }

    [Fact]
    public async Task Wait_for_condition_ready_on_pods_by_label()
    {
        // Straight after start: the pods may still be ContainerCreating, so kubectl has to watch.
        var output = await Cli.SucceedAsync("wait", "--for=condition=Ready", "pod", "-l", "app=web", "-n", "prod", "--timeout=30s");

        var lines = output.Trim().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Matches(@"^pod/web-[a-z0-9]+-[a-z0-9]{5} condition met$", l));
        Assert.Equal(2, Sim.ReadyPods(Cluster.Store, "app=web").Count);
    }

    [Fact]
    public async Task Rollout_status_follows_a_template_change_to_completion()
    {
        await Cluster.WaitSettledAsync();
        await Cli.SucceedAsync("set", "image", "deployment/web", "web=nginx:1.28", "-n", "prod");

        var output = await Cli.SucceedAsync("rollout", "status", "deployment/web", "-n", "prod", "--timeout=30s");

        Assert.EndsWith("deployment \"web\" successfully rolled out", output.Trim());
        var pods = Sim.ActivePods(Cluster.Store, "app=web");
        Assert.Equal(2, pods.Count);
        Assert.All(pods, p => Assert.Equal("nginx:1.28", p.At("spec", "containers")!.AsArray()[0].Str("image")));
        var web = Cluster.Store.Get("apps/v1", "deployments", "prod", "web")!;
        Assert.Equal(2, web.Long("metadata", "generation"));
        Assert.Equal(2, web.Long("status", "observedGeneration"));
    }

    [Fact]
    public async Task Apply_creates_then_patches_a_deployment()
    {
        var file = Path.Combine(Cli.WorkDir, "api.yaml");
        await File.WriteAllTextAsync(file, ApiDeployment("example/api:1.0"));

        Assert.Equal("deployment.apps/api created", (await Cli.SucceedAsync("apply", "-f", file)).Trim());
        var created = Cluster.Store.Get("apps/v1", "deployments", "prod", "api")!;
        Assert.Equal("example/api:1.0", created.At("spec", "template", "spec", "containers")!.AsArray()[0].Str("image"));
        Assert.NotNull(created.Str("metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"));

        await File.WriteAllTextAsync(file, ApiDeployment("example/api:2.0"));
        Assert.Equal("deployment.apps/api configured", (await Cli.SucceedAsync("apply", "-f", file)).Trim());
        var patched = Cluster.Store.Get("apps/v1", "deployments", "prod", "api")!;
        var container = patched.At("spec", "template", "spec", "containers")!.AsArray()[0]!;
        Assert.Equal("example/api:2.0", container.Str("image"));
        Assert.Equal("prod", container.At("env")!.AsArray()[0].Str("value"));
        Assert.Equal(created.Uid(), patched.Uid());
        Assert.Equal(2, patched.Long("metadata", "generation"));

        Assert.Equal("deployment.apps/api unchanged", (await Cli.SucceedAsync("apply", "-f", file)).Trim());
        await Cluster.Store.WaitUntilAsync(s => Sim.ReadyPods(s, "app=api") is { Count: 2 } pods
            && pods.All(p => p.At("spec", "containers")!.AsArray()[0].Str("image") == "example/api:2.0"), Sim.Wait);
    }

    private static string ApiDeployment(string image) => $"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: api
          namespace: prod
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: api
          template:
            metadata:
              labels:
                app: api
            spec:
              containers:
              - name: api
                image: {image}
                env:
                - name: MODE
                  value: prod
        """;

    [GeneratedRegex(@"^web-[a-z0-9]+-[a-z0-9]{5}\s+1/1\s+Running\s+0\s+\d+s$")]
    private static partial Regex WebPodRow();
}
