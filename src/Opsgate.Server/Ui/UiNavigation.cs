using Opsgate.Server.Access;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Ui;

/// <summary>The console's main menu: each entry with the least role that may use what it leads to.</summary>
internal static class UiNavigation
{
    internal sealed record Item(string Label, string Href, Role Least);

    private static readonly Item[] Items =
    [
        new("Dashboard", "/", Role.Viewer),
        new("Jobs", "/jobs", Role.Viewer),
        new("Launch", "/launch", Role.Operator),
        new("Approvals", "/approvals", Role.Approver),
        new("Runbooks", "/runbooks", Role.Viewer),
        new("Clusters", "/clusters", Role.Viewer),
        new("Ansible runs", "/ansible/runs", Role.Viewer),
        new("Inventories", "/inventories", Role.Viewer),
        new("Projects", "/projects", Role.Viewer),
        new("Credentials", "/credentials", Role.Operator),
        new("Audit", "/audit", Role.Viewer),
        new("API keys", "/admin/keys", Role.Admin),
        new("API docs", "/api/v1/docs/", Role.Viewer),
    ];

    public static IEnumerable<Item> For(Principal principal) => Items.Where(i => principal.Role is { } role && role >= i.Least);
}
