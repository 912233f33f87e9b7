using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Ansible;

namespace Opsgate.Server.Ui.Pages;

/// <summary>Every stored inventory at its latest version, as GET /api/v1/inventories lists them (viewers and up).</summary>
internal sealed class InventoriesModel(InventoryViews views) : PageModel
{
    public IReadOnlyList<InventorySummary> Rows { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct) => Rows = await views.ListAsync(ct);
}
