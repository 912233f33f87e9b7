using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Ui.Pages;

/// <summary>The menu's Launch: which runbook to launch. Only for the roles that may submit jobs.</summary>
internal sealed class LaunchChoiceModel(RunbookCatalog catalog) : PageModel
{
    public IReadOnlyCollection<Runbook> Runbooks => catalog.All;

    public string? Notice { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        Notice = RunbookModel.RoleRefusal(HttpContext.Principal()!, RunbookModel.LaunchRole);
        if (Notice is not null)
        {
            await HttpContext.TryWriteAuditAsync(AuditStatus.Denied, StatusCodes.Status403Forbidden, Notice);
            Response.StatusCode = StatusCodes.Status403Forbidden;
        }
        return Page();
    }
}
