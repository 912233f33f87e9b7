using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// The confirmation of a cluster action. <c>Preview</c> runs the action as the API's server-side dry run
/// (<c>?dryRun=true</c>: Kubernetes validates and admits it without making it) and shows its answer and what would
/// change; <c>Apply</c> runs it for real and returns to the cluster page. Both check the API route's role first and
/// are audited under its action name, the dry run as a dry run.
/// </summary>
internal sealed class ConfirmModel(KubeOperations ops, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : PageModel
{
    internal sealed record Change(string What, string Now, string After);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    [BindProperty(Name = "namespace")] public string? Namespace { get; set; }
    [BindProperty] public string? Op { get; set; }
    [BindProperty] public string? Kind { get; set; }
    [BindProperty] public string? Resource { get; set; }
    [BindProperty] public int? Replicas { get; set; }

    public string Cluster { get; private set; } = "";
    public ClusterAction? Action { get; private set; }
    public string? Notice { get; private set; }
    /// <summary>The dry run's answer, as the API route answers it.</summary>
    public string? DryRunAnswer { get; private set; }
    public IReadOnlyList<Change> Changes { get; private set; } = [];
    public string? Consequence { get; private set; }

    public string Back => $"/clusters/{Uri.EscapeDataString(Cluster)}" + (Namespace is null ? "" : "?namespace=" + Uri.EscapeDataString(Namespace));

    /// <summary>Nothing to confirm without a form: back to the cluster.</summary>
    public IActionResult OnGet(string cluster) => Redirect($"/clusters/{Uri.EscapeDataString(cluster)}");

    public Task<IActionResult> OnPostPreviewAsync(string cluster) => RunAsync(cluster, dryRun: true);

    public Task<IActionResult> OnPostApplyAsync(string cluster) => RunAsync(cluster, dryRun: false);

    private async Task<IActionResult> RunAsync(string cluster, bool dryRun)
    {
        var http = HttpContext;
        var me = http.Principal()!;
        Cluster = cluster;
        Namespace = Namespace?.Trim();
        Resource = Resource?.Trim();
        Action = ClusterAction.Find(Op, Kind);
        if (Action is null)
            return Show(StatusCodes.Status400BadRequest, "choose scale or restart for a deployment or statefulset, or delete for a pod or persistent volume claim");
        if (me.Role is not { } role || role < ClusterAction.Least)
        {
            var audit = http.Audit();
            audit.Cluster = Cut(cluster, 63);
            audit.Namespace = Namespace is null ? null : Cut(Namespace, 63);
            audit.ResourceName = Resource is null ? null : Cut(Resource, 253);
            audit.DryRun = dryRun;
            var refusal = $"this requires role {ClusterAction.Least.Name()} or higher; {me.Name} has role {me.Role?.Name() ?? "none"}";
            await Action.AuditAsync(http, StatusCodes.Status403Forbidden, refusal);
            return Show(StatusCodes.Status403Forbidden, refusal);
        }
        var (answer, status, problem) = KubeAnswers.Read(await Action.RunAsync(http, cluster, Namespace ?? "", Resource ?? "", Replicas, dryRun));
        await Action.AuditAsync(http, status, problem);
        if (answer is null)
            return Show(status, problem);
        if (!dryRun)
        {
            TempData[nameof(ClusterModel.Done)] = Action.Op switch
            {
                "scale" => $"Scaled {Action.KindWords} {Resource} to {answer.Replicas} replicas.",
                "restart" => $"Restarted {Action.KindWords} {Resource}: its pods are being replaced.",
                _ => $"Deleted {Action.KindWords} {Resource}.",
            };
            Response.Headers.Location = Back;
            return StatusCode(StatusCodes.Status303SeeOther);
        }
        DryRunAnswer = JsonSerializer.SerializeToNode(answer, json.Value.SerializerOptions)!.ToJsonString(Indented);
        // Read after the audit entry is written: the read resets the request's dry-run flag.
        await DescribeAsync(answer);
        return Page();
    }

    /// <summary>What would change: the object as it is now, beside what the action makes of it.</summary>
    private async Task DescribeAsync(OperationResult answer)
    {
        var (current, _, problem) = KubeAnswers.Read(await ops.RunAsync(HttpContext, Cluster, Namespace!, Resource!, "k8s.get", dryRun: false,
            (k, ct) => k.GetAsync(Action!.Resource, Namespace, Resource!, ct)));
        if (current is null)
        {
            Consequence = $"Its current state could not be read: {problem}";
            return;
        }
        var spec = current["spec"];
        var status = current["status"];
        switch (Action!.Op)
        {
            case "scale":
                Changes = [new("Replicas", $"{KubeAnswers.Int(spec?["replicas"]) ?? 0} ({KubeAnswers.Int(status?["readyReplicas"]) ?? 0} ready)", $"{answer.Replicas}")];
                Consequence = answer.Replicas < (KubeAnswers.Int(spec?["replicas"]) ?? 0) ? "Pods above the new count are stopped." : null;
                break;
            case "restart":
                var annotation = KubeAnswers.Text(spec?["template"]?["metadata"]?["annotations"]?["kubectl.kubernetes.io/restartedAt"]);
                Changes = [new("Pod template annotation kubectl.kubernetes.io/restartedAt", annotation ?? "none", "the time of confirming")];
                Consequence = $"Each of its {KubeAnswers.Int(spec?["replicas"]) ?? 0} pods is replaced, as the rollout strategy allows.";
                break;
            default:
                var owner = current["metadata"]?["ownerReferences"]?[0];
                Changes = [new(Action.KindWords, Describe(status), "deleted")];
                Consequence = Action.Kind == "pod"
                    ? owner is null ? "Nothing recreates it: it has no owner." : $"Its owner, {KubeAnswers.Text(owner["kind"])} {KubeAnswers.Text(owner["name"])}, makes a replacement."
                    : "If a pod still uses it, Kubernetes keeps it until that pod is gone; its volume's data is lost if the volume's reclaim policy is Delete.";
                break;
        }
    }

    private static string Describe(JsonNode? status)
    {
        var phase = KubeAnswers.Text(status?["phase"]) ?? "unknown phase";
        return KubeAnswers.Text(status?["capacity"]?["storage"]) is { } size ? $"{phase}, {size}" : phase;
    }

    private PageResult Show(int status, string? notice)
    {
        Notice = notice;
        Response.StatusCode = status;
        return Page();
    }

    private static string Cut(string value, int max) => value.Length <= max ? value : value[..max];
}
