using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Hosting;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// One cluster: its status and, in the chosen namespace, the deployments, statefulsets, pods and PVCs, read through the
/// API's list handlers (<see cref="KubeOpsApi.List"/>, so the same allowlist checks and error answers). The namespaces
/// offered are the cluster's allowlist within the user's. Operators get the actions, each leading to a confirmation
/// that runs the server-side dry run first.
/// </summary>
internal sealed class ClusterModel(ClusterRegistry registry, ClusterMonitor monitor, KubeOperations ops) : PageModel
{
    internal sealed record Listing(string Kind, string Title, IReadOnlyList<ResourceSummary> Items);

    private static readonly (KubeResource Resource, string Kind, string Title)[] Kinds =
    [
        (KubeResource.Deployments, "deployment", "Deployments"),
        (KubeResource.StatefulSets, "statefulset", "StatefulSets"),
        (KubeResource.Pods, "pod", "Pods"),
        (KubeResource.PersistentVolumeClaims, "persistentvolumeclaim", "Persistent volume claims"),
    ];

    [BindProperty(SupportsGet = true, Name = "namespace")] public string? Namespace { get; set; }

    /// <summary>Set by the confirmation page after an action ran: what was done.</summary>
    [TempData] public string? Done { get; set; }

    public ClusterInfo? Cluster { get; private set; }
    public ClusterHealth? Health { get; private set; }
    /// <summary>The namespaces to pick from; null when any namespace may be typed (the cluster allows "*" and the user has no allowlist).</summary>
    public IReadOnlyList<string>? Choices { get; private set; }
    public IReadOnlyList<Listing> Listings { get; private set; } = [];
    public string? Notice { get; private set; }
    public bool MayAct { get; private set; }

    public async Task<IActionResult> OnGetAsync(string cluster, CancellationToken ct)
    {
        var me = HttpContext.Principal()!;
        if (!Validate.IsDnsLabel(cluster) || await registry.FindAsync(cluster, ct) is not { } info)
        {
            Notice = $"cluster '{(cluster.Length <= 63 ? cluster : cluster[..63])}' is not registered";
            Response.StatusCode = StatusCodes.Status404NotFound;
            return Page();
        }
        Cluster = info;
        Health = monitor.Health(info.Name);
        MayAct = me.Role is { } role && role >= ClusterAction.Least;
        Choices = info.AllowedNamespaces.Contains("*", StringComparer.Ordinal)
            ? me.Namespaces
            : info.AllowedNamespaces.Where(me.MayUseNamespace).ToList();
        Namespace = string.IsNullOrWhiteSpace(Namespace) ? (Choices is { Count: > 0 } ? Choices[0] : null) : Namespace.Trim();
        if (Namespace is null)
        {
            Notice = Choices is null ? null : $"none of the namespaces of cluster '{info.Name}' is in {me.Name}'s namespace allowlist";
            return Page();
        }
        var listings = new List<Listing>(Kinds.Length);
        // One after another, stopping at the first refusal: an unreachable cluster costs one timeout, not four.
        foreach (var (resource, kind, title) in Kinds)
        {
            var (list, status, problem) = KubeAnswers.Read(await KubeOpsApi.List(HttpContext, ops, info.Name, Namespace, resource, kind, null));
            if (list is null)
            {
                Notice = problem;
                Response.StatusCode = status;
                break;
            }
            listings.Add(new Listing(kind, title, list.Items));
        }
        Listings = listings;
        return Page();
    }

    public static string Replicas(ResourceSummary item) =>
        $"{KubeAnswers.Int(item.Status["readyReplicas"]) ?? 0}/{KubeAnswers.Int(item.Status["desired_replicas"]) ?? 0}";

    public static int DesiredReplicas(ResourceSummary item) => KubeAnswers.Int(item.Status["desired_replicas"]) ?? 0;

    public static string Phase(ResourceSummary item) => KubeAnswers.Text(item.Status["phase"]) ?? "—";

    public static string Ready(ResourceSummary item)
    {
        var containers = item.Status["containerStatuses"] as System.Text.Json.Nodes.JsonArray ?? [];
        var ready = containers.Count(c => c?["ready"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<bool>(out var r) && r);
        return $"{ready}/{containers.Count}";
    }

    public static int Restarts(ResourceSummary item) =>
        (item.Status["containerStatuses"] as System.Text.Json.Nodes.JsonArray ?? []).Sum(c => KubeAnswers.Int(c?["restartCount"]) ?? 0);

    public static string Capacity(ResourceSummary item) => KubeAnswers.Text(item.Status["capacity"]?["storage"]) ?? "—";
}
