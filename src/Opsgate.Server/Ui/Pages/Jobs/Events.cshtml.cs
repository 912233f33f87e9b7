using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Engine;
using Opsgate.Server.Jobs;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// A job's event log read a page at a time, newest page first: what the job page links to for events older than the
/// ones it shows. Paged by sequence number, so any page of a job with 100,000 events costs one index range read.
/// </summary>
internal sealed class EventsModel(JobAccess access, JobStore store) : PageModel
{
    public const int PageSize = 500;

    public JobRow? Job { get; private set; }
    public IReadOnlyList<JobEventRow> Events { get; private set; } = [];
    public string? Notice { get; private set; }
    /// <summary>The page of older events, if there are any; the page of newer ones, if this is not the newest.</summary>
    public long? OlderBefore { get; private set; }
    public long? NewerBefore { get; private set; }

    public async Task<IActionResult> OnGetAsync(string id, long? before)
    {
        var (grant, refused) = await access.CheckAsync(HttpContext, id, JobAction.Read);
        if (grant is null)
        {
            Notice = refused!.ProblemDetails.Detail;
            Response.StatusCode = refused.StatusCode;
            return Page();
        }
        Job = grant.Job;
        var end = before is { } b && b > 0 && b <= Job.LastSeq + 1 ? b : Job.LastSeq + 1;
        Events = await store.EventsBeforeAsync(Job.Id, end, PageSize, HttpContext.RequestAborted);
        if (Events.Count > 0 && Events[0].Seq > 1)
            OlderBefore = Events[0].Seq;
        if (end <= Job.LastSeq)
            NewerBefore = Math.Min(end + PageSize, Job.LastSeq + 1);
        if (Events.Count == 0 && Job.LastSeq > 0)
            Notice = "These events were pruned: the event retention (Jobs:EventRetention) removed them.";
        return Page();
    }
}
