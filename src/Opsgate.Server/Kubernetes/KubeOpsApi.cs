using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Http;

namespace Opsgate.Server.Kubernetes;

internal sealed record ScaleRequest(int Replicas);

internal sealed record OperationResult(string Status, string Cluster, string Namespace, string Kind, string Name, string Action, bool DryRun, int? Replicas = null);

internal sealed record ResourceSummary(string Name, string Namespace, IReadOnlyDictionary<string, string> Labels, DateTime? CreatedAt, JsonObject Status);

internal sealed record ResourceList(string Cluster, string Namespace, string Kind, IReadOnlyList<ResourceSummary> Items);

/// <summary>
/// Atomic Kubernetes operations, under /api/v1/clusters/{cluster}/namespaces/{namespace}/, and the
/// apiops-compatible /ops/namespaces/{namespace}/ routes acting on the cluster named <c>default</c>.
/// Mutations need the operator role and take <c>?dryRun=true</c> (a server-side dry run, audited as such).
/// </summary>
internal static class KubeOpsApi
{
    public const string DefaultCluster = "default";

    public static void MapKubeOpsApi(this WebApplication app)
    {
        var canonical = app.MapGroup("/api/v1/clusters/{cluster}/namespaces/{namespace}").WithTags("Kubernetes operations");
        Map(canonical);
        var compat = app.MapGroup("/ops/namespaces/{namespace}").WithTags("apiops-compatible operations");
        Map(compat);
    }

    private static void Map(RouteGroupBuilder group)
    {
        group.MapPost("/deployments/{name}/scale", (HttpContext h, KubeOperations ops, IOptions<KubeOptions> o, string @namespace, string name, ScaleRequest body, string? cluster, bool dryRun = false) =>
            Scale(h, ops, o.Value, Cluster(cluster), @namespace, name, KubeResource.Deployments, body, dryRun))
            .RequireRole(Role.Operator, AccessScope.Namespace).Audited("k8s.scale", "deployment").WithSummary("Scale a deployment.");
        group.MapPost("/statefulsets/{name}/scale", (HttpContext h, KubeOperations ops, IOptions<KubeOptions> o, string @namespace, string name, ScaleRequest body, string? cluster, bool dryRun = false) =>
            Scale(h, ops, o.Value, Cluster(cluster), @namespace, name, KubeResource.StatefulSets, body, dryRun))
            .RequireRole(Role.Operator, AccessScope.Namespace).Audited("k8s.scale", "statefulset").WithSummary("Scale a statefulset.");
        group.MapPost("/deployments/{name}/restart", (HttpContext h, KubeOperations ops, TimeProvider time, string @namespace, string name, string? cluster, bool dryRun = false) =>
            Restart(h, ops, time, Cluster(cluster), @namespace, name, KubeResource.Deployments, dryRun))
            .RequireRole(Role.Operator, AccessScope.Namespace).Audited("k8s.restart", "deployment").WithSummary("Rollout restart of a deployment.");
        group.MapPost("/statefulsets/{name}/restart", (HttpContext h, KubeOperations ops, TimeProvider time, string @namespace, string name, string? cluster, bool dryRun = false) =>
            Restart(h, ops, time, Cluster(cluster), @namespace, name, KubeResource.StatefulSets, dryRun))
            .RequireRole(Role.Operator, AccessScope.Namespace).Audited("k8s.restart", "statefulset").WithSummary("Rollout restart of a statefulset.");
        group.MapDelete("/pods/{name}", (HttpContext h, KubeOperations ops, string @namespace, string name, string? cluster, bool dryRun = false) =>
            Delete(h, ops, Cluster(cluster), @namespace, name, KubeResource.Pods, "pod", dryRun))
            .RequireRole(Role.Operator, AccessScope.Namespace).Audited("k8s.delete", "pod").WithSummary("Delete a pod.");
        group.MapDelete("/persistentvolumeclaims/{name}", (HttpContext h, KubeOperations ops, string @namespace, string name, string? cluster, bool dryRun = false) =>
            Delete(h, ops, Cluster(cluster), @namespace, name, KubeResource.PersistentVolumeClaims, "persistentvolumeclaim", dryRun))
            .RequireRole(Role.Operator, AccessScope.Namespace).Audited("k8s.delete", "persistentvolumeclaim").WithSummary("Delete a persistent volume claim.");

        foreach (var (path, resource, kind) in new[]
        {
            ("/pods", KubeResource.Pods, "pod"),
            ("/deployments", KubeResource.Deployments, "deployment"),
            ("/statefulsets", KubeResource.StatefulSets, "statefulset"),
            ("/persistentvolumeclaims", KubeResource.PersistentVolumeClaims, "persistentvolumeclaim"),
        })
        {
            group.MapGet(path, (HttpContext h, KubeOperations ops, string @namespace, string? cluster, string? labelSelector = null) =>
                List(h, ops, Cluster(cluster), @namespace, resource, kind, labelSelector))
                .RequireRole(Role.Viewer, AccessScope.Namespace).WithSummary($"List {resource.Plural} in the namespace.");
        }
    }

    /// <summary>The compat routes have no {cluster} segment and act on the cluster named "default".</summary>
    private static string Cluster(string? cluster) => cluster ?? DefaultCluster;

    /// <summary>A scale, as the route does it; the console's confirmation page calls it too (dry run, then for real).</summary>
    internal static async Task<Results<Ok<OperationResult>, ProblemHttpResult>> Scale(
        HttpContext http, KubeOperations ops, KubeOptions options, string cluster, string ns, string name, KubeResource resource, ScaleRequest body, bool dryRun)
    {
        http.SetAuditBody(body);
        if (body.Replicas < 0 || body.Replicas > options.MaxReplicas)
        {
            http.Audit().Namespace = ns;
            http.Audit().ResourceName = name;
            return Problems.Invalid("replicas", $"must be between 0 and {options.MaxReplicas} (Kubernetes:MaxReplicas)");
        }
        var kind = resource.Kind.ToLowerInvariant();
        return await ops.RunAsync(http, cluster, ns, name, "k8s.scale", dryRun, async (k, ct) =>
        {
            var scale = await k.ScaleAsync(resource, ns, name, body.Replicas, dryRun, ct);
            return new OperationResult("ok", k.Cluster, ns, kind, name, "scale", dryRun, scale["spec"]?["replicas"]?.GetValue<int>() ?? body.Replicas);
        });
    }

    internal static Task<Results<Ok<OperationResult>, ProblemHttpResult>> Restart(
        HttpContext http, KubeOperations ops, TimeProvider time, string cluster, string ns, string name, KubeResource resource, bool dryRun) =>
        ops.RunAsync(http, cluster, ns, name, "k8s.restart", dryRun, async (k, ct) =>
        {
            await k.RestartAsync(resource, ns, name, time.GetUtcNow(), dryRun, ct);
            return new OperationResult("ok", k.Cluster, ns, resource.Kind.ToLowerInvariant(), name, "restart", dryRun);
        });

    internal static Task<Results<Ok<OperationResult>, ProblemHttpResult>> Delete(
        HttpContext http, KubeOperations ops, string cluster, string ns, string name, KubeResource resource, string kind, bool dryRun) =>
        ops.RunAsync(http, cluster, ns, name, "k8s.delete", dryRun, async (k, ct) =>
        {
            await k.DeleteAsync(resource, ns, name, dryRun, ct);
            return new OperationResult("ok", k.Cluster, ns, kind, name, "delete", dryRun);
        });

    internal static async Task<Results<Ok<ResourceList>, ProblemHttpResult>> List(
        HttpContext http, KubeOperations ops, string cluster, string ns, KubeResource resource, string kind, string? labelSelector)
    {
        if (labelSelector is { Length: > 1024 })
            return Problems.Invalid("labelSelector", "must be at most 1024 characters");
        return await ops.RunAsync(http, cluster, ns, null, "k8s.list", dryRun: false, async (k, ct) =>
        {
            var list = await k.ListAsync(resource, ns, ct, labelSelector);
            var items = (list["items"] as JsonArray ?? []).OfType<JsonObject>().Select(Summarize).ToList();
            return new ResourceList(k.Cluster, ns, kind, items);
        });
    }

    private static ResourceSummary Summarize(JsonObject item)
    {
        var metadata = item["metadata"] as JsonObject;
        var labels = (metadata?["labels"] as JsonObject)?.ToDictionary(p => p.Key, p => p.Value?.ToString() ?? "") ?? [];
        DateTime? created = metadata?["creationTimestamp"]?.GetValue<string>() is { } ts && DateTime.TryParse(ts, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal, out var at) ? at : null;
        var status = (item["status"]?.DeepClone() as JsonObject) ?? [];
        if (item["spec"]?["replicas"] is { } replicas)
            status["desired_replicas"] = replicas.DeepClone();
        return new ResourceSummary(metadata?["name"]?.GetValue<string>() ?? "", metadata?["namespace"]?.GetValue<string>() ?? "", labels, created, status);
    }
}
