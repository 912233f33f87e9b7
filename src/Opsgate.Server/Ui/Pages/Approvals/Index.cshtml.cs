using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// The jobs waiting for the signed-in user's decision: waiting for approval, within its namespace allowlist, not its
/// own, and of a runbook whose approvers role it has (the rules of JobAccess for deciding). Approve and Reject post to
/// the job page's handlers, which check and audit them as the API's routes do, and go on to the job.
/// </summary>
internal sealed class ApprovalsModel(ApprovalQueueQuery queue, RunbookCatalog catalog) : PageModel
{
    public const int PageSize = 50;

    /// <param name="Parameters">Each parameter as text; null for one not given (JSON null).</param>
    internal sealed record Waiting(JobRow Job, IReadOnlyList<KeyValuePair<string, string?>> Parameters);

    [BindProperty(SupportsGet = true)] public string? After { get; set; }

    public IReadOnlyList<Waiting> Jobs { get; private set; } = [];
    public string? NextAfter { get; private set; }
    public string? Notice { get; private set; }

    /// <summary>The least role that may decide on any job: the lowest approvers role of a runbook, approver for jobs of unknown runbooks.</summary>
    public Role Least => catalog.All.Where(r => r.Options.RequiresApproval).Select(r => r.Options.ApproversRole).Append(Role.Approver).Min();

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var me = HttpContext.Principal()!;
        Notice = RunbookModel.RoleRefusal(me, Least);
        if (Notice is not null || me.Role is not { } role)
        {
            await HttpContext.TryWriteAuditAsync(AuditStatus.Denied, StatusCodes.Status403Forbidden, Notice);
            Response.StatusCode = StatusCodes.Status403Forbidden;
            return Page();
        }
        if (After is not null && !JobIds.IsValid(After))
        {
            Notice = "The page to continue from is not a job id; start again from the oldest.";
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        var rows = await queue.PageAsync(me.Id, me.Namespaces, After, PageSize + 1, ct);
        NextAfter = rows.Count > PageSize ? rows[PageSize - 1].Id : null;
        Jobs = rows.Take(PageSize)
            .Where(j => role >= (catalog.Find(j.Type)?.Options.ApproversRole ?? Role.Approver))
            .Select(j => new Waiting(j, JobJson.Params(j.Params).Select(p => KeyValuePair.Create(p.Key, p.Value is null ? null : RunbookModel.Input(p.Value))).ToList()))
            .ToList();
        return Page();
    }
}
