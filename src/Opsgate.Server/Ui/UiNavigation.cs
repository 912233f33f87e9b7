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
        // Runbooks, launch and approvals (issue 18).
        new("Runbooks", "/runbooks", Role.Viewer),
        new("Launch", "/launch", Role.Operator),
        new("Approvals", "/approvals", Role.Approver),
        new("API docs", "/api/v1/docs/", Role.Viewer),
    ];

    public static IEnumerable<Item> For(Principal principal) => Items.Where(i => principal.Role is { } role && role >= i.Least);
}
