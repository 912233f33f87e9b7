using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Ui.Pages;

/// <summary>Every runbook the catalog knows (what GET /api/v1/runbooks lists), with a Launch link for those who may submit.</summary>
internal sealed class RunbooksModel(RunbookCatalog catalog) : PageModel
{
    public IReadOnlyCollection<Runbook> Runbooks => catalog.All;

    public bool MayLaunch => RunbookModel.MayLaunch(HttpContext.Principal()!);
}
