using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Opsgate.Server.Access;
using Opsgate.Server.Ansible;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine;
using Opsgate.Server.Jobs;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// An Ansible job's per-host results (the figures of GET /api/v1/jobs/{id}/hosts, sorted, filtered and paged on the
/// server from GET query parameters), the end of its standard output with the whole text behind a link, and the
/// retry on failed hosts for operators. A page of its own rather than part of the job page's live summary: the
/// summary is fetched again on every job or step event, and a large table with its own sort, filter and page would
/// be rendered again each time and lose its place; here the address holds the view and a reload refreshes it.
/// </summary>
internal sealed class HostsModel(JobAccess access, AnsibleResultsQuery query, FailedHostsRetry retry) : PageModel
{
    public const int PageSize = 50;

    /// <summary>How much output the page shows; the rest is behind the link to the whole text.</summary>
    public const int TailChars = 64 * 1024;

    [BindProperty(SupportsGet = true)] public string? Outcome { get; set; }
    [BindProperty(SupportsGet = true)] public string? Host { get; set; }
    [BindProperty(SupportsGet = true)] public string? Sort { get; set; }
    [BindProperty(SupportsGet = true)] public string? Dir { get; set; }
    [BindProperty(SupportsGet = true, Name = "p")] public int PageNumber { get; set; } = 1;

    public JobRow? Job { get; private set; }
    public bool Ansible { get; private set; }
    public HostsPage? Hosts { get; private set; }
    public string Stdout { get; private set; } = "";
    public bool StdoutTruncated { get; private set; }
    public bool OfferRetry { get; private set; }
    public string? Notice { get; private set; }

    public bool Descending => Dir == "desc";
    public int Pages => Hosts is null ? 1 : Math.Max(1, (Hosts.Matching + PageSize - 1) / PageSize);

    public Task<IActionResult> OnGetAsync(string id) => ShowAsync(id, null, StatusCodes.Status200OK);

    /// <summary>The whole standard output as plain text, read with the job page's access check (the session cookie does not open API routes).</summary>
    public async Task<IActionResult> OnGetStdoutAsync(string id)
    {
        var (grant, refused) = await access.CheckAsync(HttpContext, id, JobAction.Read);
        if (grant is null)
            return StatusCode(refused!.StatusCode);
        Response.ContentType = "text/plain; charset=utf-8";
        await foreach (var text in query.StdoutAsync(id, HttpContext.RequestAborted))
            await Response.WriteAsync(text, HttpContext.RequestAborted);
        return new EmptyResult();
    }

    /// <summary>
    /// POST /api/v1/jobs/{id}/retry with <c>{"hosts": "failed"}</c>, pressed as a button: the route's role, the same
    /// <see cref="JobAccess"/> check, the same <see cref="FailedHostsRetry"/>, audited as <c>job.retry</c> about the original.
    /// </summary>
    public async Task<IActionResult> OnPostRetryFailedAsync(string id)
    {
        var http = HttpContext;
        var me = http.Principal()!;
        http.SetAuditBody(new RetryRequest(FailedHostsRetry.Failed));
        http.Audit().ResourceName = id.Length <= 64 ? id : id[..64];
        if (JobIds.IsValid(id))
            http.Audit().JobId = id;
        string refusal;
        int status;
        var allowed = me.Role is { } role && role >= Role.Operator;
        var (grant, refused) = allowed ? await access.CheckAsync(http, id, JobAction.Retry) : default;
        if (!allowed)
        {
            (status, refusal) = (StatusCodes.Status403Forbidden, $"this requires role {Role.Operator.Name()} or higher; {me.Name} has role {me.Role?.Name() ?? "none"}");
        }
        else if (grant is null)
        {
            (status, refusal) = (refused!.StatusCode, refused.ProblemDetails.Detail ?? refused.ProblemDetails.Title ?? "refused");
        }
        else
        {
            var started = await retry.StartAsync(http, grant.Job, http.RequestAborted);
            // As the API route: the submit path named the new job as the resource; this entry is about the original.
            http.SetAuditBody(new RetryRequest(FailedHostsRetry.Failed));
            http.Audit().ResourceName = id;
            if (started.Result is Created<JobView> { Value: { } created })
            {
                await UiSession.AuditAsync(http, "job.retry", "job", AuditStatus.Success, StatusCodes.Status303SeeOther, null);
                Response.Headers.Location = $"/jobs/{created.JobId}";
                return StatusCode(StatusCodes.Status303SeeOther);
            }
            var problem = (ProblemHttpResult)started.Result;
            (status, refusal) = (problem.StatusCode, problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title ?? "refused");
        }
        await UiSession.AuditAsync(http, "job.retry", "job", status is 401 or 403 ? AuditStatus.Denied : AuditStatus.Error, status, refusal);
        return await ShowAsync(id, refusal, status);
    }

    /// <summary>This page's address with the current filter and sort, with the given sort, direction or page.</summary>
    public string ViewUrl(string? sort = null, string? dir = null, int? page = null)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["outcome"] = Outcome == AnsibleResultsQuery.AllOutcomes ? null : Outcome,
            ["host"] = string.IsNullOrEmpty(Host) ? null : Host,
            ["sort"] = sort ?? Sort,
            ["dir"] = dir ?? Dir,
            ["p"] = page is > 1 ? page.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : null,
        };
        return QueryHelpers.AddQueryString($"/jobs/{Job?.Id}/hosts", values.Where(v => v.Value is not null && !(v.Key == "sort" && v.Value == "host") && !(v.Key == "dir" && v.Value == "asc")));
    }

    /// <summary>The address that sorts by <paramref name="column"/>: ascending first, the other way when it is already the sort.</summary>
    public string SortUrl(string column) => ViewUrl(column, Sort == column && !Descending ? "desc" : "asc", 1);

    /// <summary>aria-sort for a column header.</summary>
    public string? AriaSort(string column) => Sort == column ? (Descending ? "descending" : "ascending") : null;

    private async Task<IActionResult> ShowAsync(string id, string? notice, int status)
    {
        var (grant, refused) = await access.CheckAsync(HttpContext, id, JobAction.Read);
        if (grant is null)
        {
            Notice = refused!.ProblemDetails.Detail;
            Response.StatusCode = refused.StatusCode;
            return Page();
        }
        Job = grant.Job;
        Ansible = grant.Steps.Any(s => s.Kind == "ansible.run");
        Outcome = string.IsNullOrWhiteSpace(Outcome) ? AnsibleResultsQuery.AllOutcomes : Outcome.Trim();
        Host = string.IsNullOrWhiteSpace(Host) ? null : Host.Trim();
        Sort = string.IsNullOrWhiteSpace(Sort) ? "host" : Sort.Trim();
        Dir = Dir == "desc" ? "desc" : "asc";
        var bad = !AnsibleResultsQuery.Outcomes.Contains(Outcome) ? "Outcome: choose one of the listed outcomes."
            : !AnsibleResultsQuery.Sorts.Contains(Sort) ? "Sort: host or one of the counts."
            : Host is { Length: > 255 } ? "Host: at most 255 characters."
            : PageNumber < 1 ? "Page: 1 or more." : null;
        if (bad is not null)
        {
            (Outcome, Sort, Host, PageNumber) = (AnsibleResultsQuery.AllOutcomes, "host", null, 1);
            (notice, status) = (bad, StatusCodes.Status400BadRequest);
        }
        var ct = HttpContext.RequestAborted;
        Hosts = await query.HostsAsync(id, Outcome, Host, Sort, Descending, (PageNumber - 1) * PageSize, PageSize, ct);
        (Stdout, StdoutTruncated) = await query.StdoutTailAsync(id, TailChars, ct);
        OfferRetry = Offered(grant, Hosts.Totals);
        Notice = notice;
        Response.StatusCode = status;
        return Page();
    }

    private bool Offered(JobGrant grant, HostTotals totals) =>
        HttpContext.Principal()?.Role is { } role && role >= Role.Operator && grant.Job.Status == JobStatus.Failed && grant.Job.ParentId is null
        && totals.Failed + totals.Unreachable > 0;
}
