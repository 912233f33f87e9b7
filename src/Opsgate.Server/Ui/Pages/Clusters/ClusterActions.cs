using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// What the cluster page may ask of a resource: scale and restart a deployment or statefulset, delete a pod or a PVC.
/// Each is the API route of the same meaning called in-process (<see cref="KubeOpsApi"/>'s handlers, through
/// <see cref="KubeOperations"/>), audited under the route's action name and resource kind.
/// </summary>
internal sealed record ClusterAction(string Op, string Kind, KubeResource Resource)
{
    public static readonly ClusterAction[] All =
    [
        new("scale", "deployment", KubeResource.Deployments),
        new("scale", "statefulset", KubeResource.StatefulSets),
        new("restart", "deployment", KubeResource.Deployments),
        new("restart", "statefulset", KubeResource.StatefulSets),
        new("delete", "pod", KubeResource.Pods),
        new("delete", "persistentvolumeclaim", KubeResource.PersistentVolumeClaims),
    ];

    /// <summary>The API route's audit action: <c>k8s.scale</c>, <c>k8s.restart</c>, <c>k8s.delete</c>.</summary>
    public string AuditAction => "k8s." + Op;

    public string Verb => Op switch { "scale" => "Scale", "restart" => "Restart", _ => "Delete" };

    public string KindWords => Kind == "persistentvolumeclaim" ? "persistent volume claim" : Kind;

    public string KindTitle => char.ToUpperInvariant(KindWords[0]) + KindWords[1..];

    /// <summary>The least role, as on the API's routes.</summary>
    public static Role Least => Role.Operator;

    public static ClusterAction? Find(string? op, string? kind) => All.FirstOrDefault(a => a.Op == op && a.Kind == kind);

    /// <summary>Runs the action (or its server-side dry run) exactly as its API route does.</summary>
    public Task<Results<Ok<OperationResult>, ProblemHttpResult>> RunAsync(HttpContext http, string cluster, string ns, string name, int? replicas, bool dryRun)
    {
        var services = http.RequestServices;
        var ops = services.GetRequiredService<KubeOperations>();
        return Op switch
        {
            "scale" => KubeOpsApi.Scale(http, ops, services.GetRequiredService<IOptions<KubeOptions>>().Value, cluster, ns, name, Resource, new ScaleRequest(replicas ?? -1), dryRun),
            "restart" => KubeOpsApi.Restart(http, ops, services.GetRequiredService<TimeProvider>(), cluster, ns, name, Resource, dryRun),
            _ => KubeOpsApi.Delete(http, ops, cluster, ns, name, Resource, Kind, dryRun),
        };
    }

    /// <summary>Audits the outcome as the API's audit filter would: success, denied (401/403) or error.</summary>
    public Task AuditAsync(HttpContext http, int status, string? error) =>
        UiSession.AuditAsync(http, AuditAction, Kind, status switch
        {
            < 400 => AuditStatus.Success,
            401 or 403 => AuditStatus.Denied,
            _ => AuditStatus.Error,
        }, status, error);
}

/// <summary>Reading the answers of <see cref="KubeOperations"/> on a page: a value, or the problem's status and words.</summary>
internal static class KubeAnswers
{
    public static (T? Value, int Status, string? Problem) Read<T>(Results<Ok<T>, ProblemHttpResult> result) where T : class => result.Result switch
    {
        Ok<T> ok => (ok.Value, StatusCodes.Status200OK, null),
        ProblemHttpResult p => (null, p.StatusCode, p.ProblemDetails.Detail ?? p.ProblemDetails.Title ?? "the cluster refused"),
        _ => (null, StatusCodes.Status502BadGateway, "no answer"),
    };

    public static string? Text(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    public static int? Int(JsonNode? node) => node is not JsonValue v ? null
        : v.TryGetValue<int>(out var i) ? i
        : v.TryGetValue<long>(out var l) && l is >= int.MinValue and <= int.MaxValue ? (int)l : null;
}
