using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Engine;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// The recent jobs that ran a playbook (any runbook with an <c>ansible.run</c> step; shards are shown in their
/// parent), newest first, with their host totals; the same namespace allowlist as the jobs list. A page of its own
/// rather than a filter on the jobs list: "has an ansible.run step" is not one of the list's columns, and the host
/// totals are this page's point.
/// </summary>
internal sealed class RunsModel(AnsibleResultsQuery query) : PageModel
{
    public const int PageSize = 25;

    [BindProperty(SupportsGet = true)] public string? Before { get; set; }

    public IReadOnlyList<AnsibleRun> Rows { get; private set; } = [];
    public string? NextBefore { get; private set; }
    public string? Notice { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        Before = string.IsNullOrWhiteSpace(Before) ? null : Before.Trim();
        if (Before is not null && !JobIds.IsValid(Before))
        {
            Notice = "The page to continue from is not a job id; start again from the newest.";
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        var rows = await query.RunsAsync(Before, PageSize + 1, HttpContext.Principal()!.Namespaces, ct);
        Rows = rows.Count > PageSize ? rows.Take(PageSize).ToList() : rows;
        NextBefore = rows.Count > PageSize ? Rows[^1].Job.Id : null;
    }
}
