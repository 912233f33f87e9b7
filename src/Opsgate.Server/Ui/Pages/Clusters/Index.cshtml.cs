using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Ui.Pages;

/// <summary>The cluster registry as <c>GET /api/v1/clusters/status</c> shows it: status, version, allowlist, latest execution.</summary>
internal sealed class ClustersModel(ClusterRegistry registry, ClusterMonitor monitor, AuditLog audit) : PageModel
{
    public IReadOnlyList<ClusterResponse> Clusters { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct) =>
        Clusters = await ClustersApi.StatusesAsync(registry, monitor, audit, HttpContext.Principal()!.Namespaces, ct);
}
