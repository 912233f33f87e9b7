using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Ansible;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// One inventory: its versions (GET /api/v1/inventories/{ref}/versions) and the hosts of one version with their groups
/// (GET /api/v1/inventories/{ref}/hosts), a page of hosts at a time.
/// </summary>
internal sealed class InventoryModel(InventoryViews views) : PageModel
{
    public const int PageSize = 100;

    [BindProperty(SupportsGet = true)] public string? Version { get; set; }
    [BindProperty(SupportsGet = true, Name = "p")] public int PageNumber { get; set; } = 1;

    public string Name { get; private set; } = "";
    public IReadOnlyList<InventorySummary> Versions { get; private set; } = [];
    public InventoryHostsView? Hosts { get; private set; }
    public string? Notice { get; private set; }

    public int Pages => Hosts is null ? 1 : (int)Math.Max(1, (Hosts.Total + PageSize - 1) / PageSize);

    public async Task OnGetAsync(string name, CancellationToken ct)
    {
        Name = name;
        Version = string.IsNullOrWhiteSpace(Version) ? null : Version.Trim();
        if (!InventoryViews.IsValidReference(name))
            (Notice, Response.StatusCode) = ("Inventory: " + InventoryViews.ReferenceRule + ".", StatusCodes.Status400BadRequest);
        else if (Version is not null && !InventoryViews.IsValidVersion(Version))
            (Notice, Response.StatusCode) = ("Version: " + InventoryViews.VersionRule + ".", StatusCodes.Status400BadRequest);
        else if (PageNumber < 1)
            (Notice, Response.StatusCode) = ("Page: 1 or more.", StatusCodes.Status400BadRequest);
        else if (await views.VersionsAsync(name, ct) is not { } versions)
            (Notice, Response.StatusCode) = ($"Inventory '{name}' does not exist.", StatusCodes.Status404NotFound);
        else
        {
            Versions = versions;
            Hosts = await views.HostsAsync(name, Version, (PageNumber - 1) * PageSize, PageSize, ct);
            if (Hosts is null)
                (Notice, Response.StatusCode) = ($"Inventory '{name}' has no version '{Version}'.", StatusCodes.Status404NotFound);
        }
    }

    public string ViewUrl(string? version, int page) =>
        $"/inventories/{Uri.EscapeDataString(Name)}" + (version is null && page <= 1 ? "" : "?" + string.Join('&',
            new[] { version is null ? null : "version=" + Uri.EscapeDataString(version), page > 1 ? $"p={page}" : null }.Where(p => p is not null)));
}
