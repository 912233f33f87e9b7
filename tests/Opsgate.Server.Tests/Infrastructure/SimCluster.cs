using System.Net;
using System.Net.Http.Json;
using System.Text;
using KubeSim;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>A KubeSim with the namespaces and workloads the Kubernetes and job tests act on, and its registration in Opsgate.</summary>
public static class SimCluster
{
    public const string Seed = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: prod}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: staging}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: kube-system}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: prod, labels: {app: web}}
        spec:
          replicas: 2
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: web, image: nginx:1.27}]}
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: postgres, namespace: prod, labels: {app: postgres}}
        spec:
          replicas: 1
          serviceName: postgres
          selector: {matchLabels: {app: postgres}}
          template:
            metadata: {labels: {app: postgres}}
            spec: {containers: [{name: postgres, image: postgres:16}]}
          volumeClaimTemplates:
          - metadata: {name: data}
            spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
        """;

    public static Task<KubeSimServer> StartAsync(KubeSimOptions? options = null) =>
        KubeSimServer.StartAsync((options ?? new KubeSimOptions()) with
        {
            ManifestsYaml = Seed,
            ReadyAfter = TimeSpan.FromMilliseconds(50),
            DeletionGrace = TimeSpan.FromMilliseconds(100),
        });

    /// <summary>Registers the KubeSim as cluster <paramref name="name"/> through the API (base64 kubeconfig).</summary>
    public static async Task RegisterAsync(OpsgateServer server, KubeSimServer sim, string name, string[] namespaces)
    {
        var response = await server.Admin.PostAsJsonAsync("/api/v1/clusters", new
        {
            name,
            kubeconfig = Convert.ToBase64String(Encoding.UTF8.GetBytes(sim.KubeconfigYaml())),
            allowed_namespaces = namespaces,
        }, OpsgateServer.Json);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }
}
