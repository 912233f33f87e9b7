using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Credentials;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// Stored credentials as GET /api/v1/credentials lists them, for the same least role (operator: they name credentials
/// in projects and jobs): name, kind, username, who may use it, when and by whom it was stored. The list holds no
/// secret (<see cref="CredentialInfo"/> has none), so the page cannot show one.
/// </summary>
// Roles.Policy(Role.Operator): an attribute takes a constant. A viewer gets the console's 403 page, audited as a denial.
[Authorize(Policy = "role:operator")]
internal sealed class CredentialsModel(CredentialStore credentials) : PageModel
{
    public IReadOnlyList<CredentialInfo> Rows { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct) => Rows = await credentials.ListAsync(ct);
}
