using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Api;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Jobs;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// One job: its facts, step timeline and live event log, and the buttons the user may press. Reading and every action
/// go through <see cref="JobAccess"/> as on the API; an action also needs the role its API route needs, and is
/// audited under the API's action name.
/// </summary>
internal sealed class JobModel(JobAccess access, JobCommands commands, JobSubmission submission, RunbookCatalog catalog, JobStore store) : PageModel
{
    /// <summary>How many of the latest events the page shows when it opens; older ones are a link away, a page at a time.</summary>
    public const int EventsShown = 200;

    public JobRow? Job { get; private set; }
    public IReadOnlyList<StepRow> Steps { get; private set; } = [];
    public string? PendingReason { get; private set; }
    public string Parameters { get; private set; } = "{}";
    public IReadOnlyList<string> Actions { get; private set; } = [];
    public string? Notice { get; private set; }
    /// <summary>The latest events up to the one the page was rendered at; the page's script goes on live after the last.</summary>
    public IReadOnlyList<JobEventRow> Events { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(string id) => await ShowAsync(id, null, StatusCodes.Status200OK);

    /// <summary>The summary, actions and timeline alone: what the page's script swaps in when an event says they changed.</summary>
    public async Task<IActionResult> OnGetSummaryAsync(string id)
    {
        var (grant, refused) = await access.CheckAsync(HttpContext, id, JobAction.Read);
        if (grant is null)
            return StatusCode(refused!.StatusCode);
        await LoadAsync(grant);
        return Partial("_JobSummary", this);
    }

    public Task<IActionResult> OnPostCancelAsync(string id) =>
        CommandAsync(id, "job.cancel", Role.Operator, JobAction.Cancel, by => commands.CancelAsync(id, by.Name, HttpContext.RequestAborted),
            "only pending, waiting or running jobs can be cancelled");

    public Task<IActionResult> OnPostRetryAsync(string id) =>
        CommandAsync(id, "job.retry", Role.Operator, JobAction.Retry, by => commands.RetryAsync(id, by.Name, HttpContext.RequestAborted),
            "only failed jobs can be retried");

    public Task<IActionResult> OnPostApproveAsync(string id, [FromForm] string? comment) =>
        CommandAsync(id, "job.approve", Role.Viewer, JobAction.Decide,
            by => commands.ApproveAsync(id, by.Name, by.Namespaces, Comment(comment), HttpContext.RequestAborted), "only jobs waiting for approval can be approved");

    public Task<IActionResult> OnPostRejectAsync(string id, [FromForm] string? comment) =>
        CommandAsync(id, "job.reject", Role.Viewer, JobAction.Decide,
            by => commands.RejectAsync(id, by.Name, Comment(comment), HttpContext.RequestAborted), "only jobs waiting for approval can be rejected");

    private async Task<IActionResult> CommandAsync(
        string id, string action, Role least, JobAction kind, Func<Principal, Task<(CommandOutcome Outcome, string? Status)>> command, string wrongState)
    {
        var http = HttpContext;
        var me = http.Principal()!;
        http.Audit().ResourceName = id.Length <= 64 ? id : id[..64];
        if (JobIds.IsValid(id))
            http.Audit().JobId = id;
        string refusal;
        int status;
        if (me.Role is not { } role || role < least)
        {
            (status, refusal) = (StatusCodes.Status403Forbidden, $"this requires role {least.Name()} or higher; {me.Name} has role {me.Role?.Name() ?? "none"}");
        }
        else if ((await access.CheckAsync(http, id, kind)) is (null, { } refused))
        {
            (status, refusal) = (refused.StatusCode, refused.ProblemDetails.Detail ?? refused.ProblemDetails.Title ?? "refused");
        }
        else
        {
            var (outcome, now) = await command(me);
            if (outcome == CommandOutcome.Done)
            {
                await UiSession.AuditAsync(http, action, "job", AuditStatus.Success, StatusCodes.Status303SeeOther, null);
                Response.Headers.Location = $"/jobs/{id}";
                return StatusCode(StatusCodes.Status303SeeOther);
            }
            (status, refusal) = outcome == CommandOutcome.NotFound
                ? (StatusCodes.Status404NotFound, $"job {id} does not exist")
                : (StatusCodes.Status409Conflict, $"job {id} is {now}: {wrongState}");
        }
        await UiSession.AuditAsync(http, action, "job", status is 401 or 403 ? AuditStatus.Denied : AuditStatus.Error, status, refusal);
        return await ShowAsync(id, refusal, status);
    }

    private async Task<IActionResult> ShowAsync(string id, string? notice, int status)
    {
        var (grant, refused) = await access.CheckAsync(HttpContext, id, JobAction.Read);
        if (grant is null)
        {
            Notice = refused!.ProblemDetails.Detail;
            Response.StatusCode = refused.StatusCode;
            return Page();
        }
        await LoadAsync(grant);
        Events = await store.EventsBeforeAsync(grant.Job.Id, grant.Job.LastSeq + 1, EventsShown, HttpContext.RequestAborted);
        Notice = notice;
        Response.StatusCode = status;
        return Page();
    }

    private async Task LoadAsync(JobGrant grant)
    {
        Job = grant.Job;
        Steps = grant.Steps;
        PendingReason = await submission.PendingReasonAsync(grant.Job, HttpContext.RequestAborted);
        Parameters = JobJson.Params(grant.Job.Params).ToJsonString();
        Actions = Offered(grant.Job, HttpContext.Principal()!);
    }

    /// <summary>The buttons to show: what the user's role allows in the job's state. The action itself is checked again when pressed.</summary>
    private List<string> Offered(JobRow job, Principal me)
    {
        var offered = new List<string>();
        if (me.Role is not { } role)
            return offered;
        if (job.Status == JobStatus.WaitingApproval && role >= (catalog.Find(job.Type)?.Options.ApproversRole ?? Role.Approver) && me.Id != job.PrincipalId)
            offered.AddRange(["Approve", "Reject"]);
        if (role >= Role.Operator && job.Status is JobStatus.Pending or JobStatus.WaitingApproval or JobStatus.Running)
            offered.Add("Cancel");
        if (role >= Role.Operator && job.Status == JobStatus.Failed)
            offered.Add("Retry");
        return offered;
    }

    private static string? Comment(string? comment) => string.IsNullOrWhiteSpace(comment) ? null : comment.Trim()[..Math.Min(comment.Trim().Length, 1000)];
}
