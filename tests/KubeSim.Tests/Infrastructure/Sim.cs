using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Tests.Infrastructure;

/// <summary>The seeded cluster the tests share: namespace prod, deployment web (2 replicas), statefulset postgres (1, claim template "data").</summary>
public static class Sim
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    public const string Seed = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: prod
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: prod
          labels:
            app: web
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: web
          template:
            metadata:
              labels:
                app: web
            spec:
              containers:
              - name: web
                image: nginx:1.27
                ports:
                - containerPort: 80
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata:
          name: postgres
          namespace: prod
        spec:
          replicas: 1
          serviceName: postgres
          selector:
            matchLabels:
              app: postgres
          template:
            metadata:
              labels:
                app: postgres
            spec:
              containers:
              - name: postgres
                image: postgres:16
          volumeClaimTemplates:
          - metadata:
              name: data
            spec:
              accessModes: [ReadWriteOnce]
              resources:
                requests:
                  storage: 1Gi
        """;

    public static Task<KubeSimServer> StartAsync(KubeSimOptions? options = null) =>
        KubeSimServer.StartAsync((options ?? new KubeSimOptions()) with { ReadyAfter = TimeSpan.FromMilliseconds(50), ManifestsYaml = Seed });

    /// <summary>Waits until web has <paramref name="web"/> ready pods and postgres <paramref name="postgres"/>.</summary>
    public static async Task WaitSettledAsync(this KubeSimServer sim, int web = 2, int postgres = 1)
    {
        await sim.Store.WaitUntilAsync(s =>
            ReadyPods(s, "app=web").Count == web && ReadyPods(s, "app=postgres").Count == postgres
            && s.Get("apps/v1", "deployments", "prod", "web").Long("status", "readyReplicas") == web, Wait);
    }

    /// <summary>Waits until the controllers are done writing: the resourceVersion holds still for 300 ms (status updates trail readiness).</summary>
    public static async Task WaitQuietAsync(this KubeSimServer sim)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            var version = sim.Store.ResourceVersion;
            await Task.Delay(300);
            if (version == sim.Store.ResourceVersion)
                return;
            Assert.True(DateTime.UtcNow < deadline, $"KubeSim kept writing for {Wait}");
        }
    }

    public static List<JsonObject> ReadyPods(KubeStore store, string selector) =>
        store.List("v1", "pods", "prod", selector)
            .Where(p => !p.IsTerminating() && p.At("status", "conditions").Objects().Any(c => c.Str("type") == "Ready" && c.Str("status") == "True"))
            .ToList();

    public static List<JsonObject> ActivePods(KubeStore store, string selector) =>
        store.List("v1", "pods", "prod", selector).Where(p => !p.IsTerminating()).ToList();
}
