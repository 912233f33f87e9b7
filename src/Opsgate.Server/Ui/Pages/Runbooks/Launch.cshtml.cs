using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Jobs;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// A runbook's launch form. Both buttons submit through <see cref="JobsApi.SubmitAsync"/>, the code behind
/// POST /api/v1/jobs: the same role (operator), the same binding and checks, the same messages, the same audit entry
/// (<c>job.submit</c>, the body with secrets redacted). Launch goes on to the job's live page; Dry run submits a dry-run
/// job and shows its plan here, following it live, with the form kept for the real launch.
/// </summary>
internal sealed class LaunchModel(RunbookCatalog catalog, JobSubmission submission) : PageModel
{
    public Runbook? Runbook { get; private set; }
    public IReadOnlyList<LaunchField> Fields { get; private set; } = [];
    public string? Notice { get; private set; }
    public string? PlanJobId { get; private set; }

    public async Task<IActionResult> OnGetAsync(string name)
    {
        if (!Find(name))
            return Page();
        if (Refusal(HttpContext.Principal()!) is { } refusal)
        {
            // Refused reads of a page are audited like the API's 403s (under the page's route, as UiDenials does).
            await HttpContext.TryWriteAuditAsync(AuditStatus.Denied, StatusCodes.Status403Forbidden, refusal);
            return Refuse(refusal);
        }
        Fields = LaunchForm.Fields(Runbook!, null, new Dictionary<string, string>());
        return Page();
    }

    public Task<IActionResult> OnPostLaunchAsync(string name) => SubmitAsync(name, dryRun: false);

    public Task<IActionResult> OnPostDryRunAsync(string name) => SubmitAsync(name, dryRun: true);

    private async Task<IActionResult> SubmitAsync(string name, bool dryRun)
    {
        var http = HttpContext;
        Find(name);
        if (Refusal(http.Principal()!) is { } refusal)
        {
            http.Audit().DryRun = dryRun;
            await UiSession.AuditAsync(http, "job.submit", "job", AuditStatus.Denied, StatusCodes.Status403Forbidden, refusal);
            return Refuse(refusal);
        }
        // An unknown runbook is left to the submit, which answers it as the API does (400 on "type", listing the known ones).
        var input = Runbook is null ? null : LaunchForm.Read(Runbook, Request.Form);
        http.SetAuditBody(new SubmitJobRequest(name, input, dryRun));
        var submitted = await JobsApi.SubmitAsync(http, submission, name, input, dryRun);
        var withheld = LaunchForm.Withheld(input, submission.Redacted(name, input));
        if (submitted.Result is Created<JobView> { Value: { } job })
        {
            await UiSession.AuditAsync(http, "job.submit", "job", AuditStatus.Success, dryRun ? StatusCodes.Status200OK : StatusCodes.Status303SeeOther, null);
            if (!dryRun)
            {
                Response.Headers.Location = $"/jobs/{job.JobId}";
                return StatusCode(StatusCodes.Status303SeeOther);
            }
            PlanJobId = job.JobId;
            if (Runbook is not null)
                Fields = LaunchForm.Fields(Runbook, Request.Form, new Dictionary<string, string>(), withheld);
            return Page();
        }
        var problem = ((ProblemHttpResult)submitted.Result).ProblemDetails;
        var status = problem.Status ?? StatusCodes.Status400BadRequest;
        Notice = problem.Detail ?? problem.Title;
        await UiSession.AuditAsync(http, "job.submit", "job", status is 401 or 403 ? AuditStatus.Denied : AuditStatus.Error, status, Notice);
        // A parameter's message goes next to its input as well; any other (a step's input, a namespace refused) stays at the top.
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        if (problem is HttpValidationProblemDetails validation)
        {
            foreach (var (field, messages) in validation.Errors)
            {
                if (field.StartsWith("params.", StringComparison.Ordinal) && messages.Length > 0)
                    errors[field["params.".Length..]] = messages[0];
            }
        }
        if (Runbook is not null)
            Fields = LaunchForm.Fields(Runbook, Request.Form, errors, withheld);
        Response.StatusCode = status;
        return Page();
    }

    private bool Find(string name)
    {
        Runbook = catalog.Find(name);
        if (Runbook is null)
        {
            Notice = $"There is no runbook named {(name.Length <= 63 ? name : name[..63] + "…")}.";
            Response.StatusCode = StatusCodes.Status404NotFound;
        }
        return Runbook is not null;
    }

    /// <summary>The submit route's role check, in its words.</summary>
    private static string? Refusal(Principal me) => RunbookModel.RoleRefusal(me, RunbookModel.LaunchRole);

    private PageResult Refuse(string refusal)
    {
        Notice = refusal;
        Fields = [];
        Runbook = null;
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return Page();
    }
}
