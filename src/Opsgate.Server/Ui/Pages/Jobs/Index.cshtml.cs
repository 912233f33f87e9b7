using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Opsgate.Server.Access;
using Opsgate.Server.Auth;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Ui.Pages;

/// <summary>Every job the user may see, newest first, filtered, 50 to a page (see <see cref="JobListQuery"/>).</summary>
internal sealed class JobsModel(JobListQuery query, RunbookCatalog catalog) : PageModel
{
    public const int PageSize = 50;

    public static readonly string[] Statuses =
        [JobStatus.Pending, JobStatus.WaitingApproval, JobStatus.Running, JobStatus.Succeeded, JobStatus.Failed, JobStatus.Cancelled];

    [BindProperty(SupportsGet = true)] public string? Status { get; set; }
    [BindProperty(SupportsGet = true)] public string? Type { get; set; }
    [BindProperty(SupportsGet = true)] public string? Actor { get; set; }
    [BindProperty(SupportsGet = true)] public string? Cluster { get; set; }
    [BindProperty(SupportsGet = true)] public string? Namespace { get; set; }
    [BindProperty(SupportsGet = true)] public string? From { get; set; }
    [BindProperty(SupportsGet = true)] public string? To { get; set; }
    [BindProperty(SupportsGet = true)] public string? Before { get; set; }

    public string? Error { get; private set; }
    public IReadOnlyList<JobRow> Rows { get; private set; } = [];
    public string? NextBefore { get; private set; }
    public IEnumerable<string> Types => catalog.All.Select(r => r.Name).Order(StringComparer.Ordinal);

    public async Task OnGetAsync(CancellationToken ct)
    {
        Status = Blank(Status);
        Type = Blank(Type);
        Actor = Blank(Actor);
        Cluster = Blank(Cluster);
        Namespace = Blank(Namespace);
        Before = Blank(Before);
        Error = Check(out var from, out var to);
        if (Error is not null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        var rows = await query.PageAsync(new JobFilter(Status, Type, Actor, Cluster, Namespace, from, to), Before, PageSize + 1, HttpContext.Principal()!.Namespaces, ct);
        Rows = rows.Count > PageSize ? rows.Take(PageSize).ToList() : rows;
        NextBefore = rows.Count > PageSize ? Rows[^1].Id : null;
    }

    /// <summary>This list's address with the same filters, starting after <paramref name="before"/> (null: the first page).</summary>
    public string PageUrl(string? before)
    {
        var query = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["status"] = Status, ["type"] = Type, ["actor"] = Actor, ["cluster"] = Cluster, ["namespace"] = Namespace,
            ["from"] = Blank(From), ["to"] = Blank(To), ["before"] = before,
        };
        return QueryHelpers.AddQueryString("/jobs", query.Where(p => p.Value is not null));
    }

    /// <summary>The first problem with the filters, in words for the page (null: none).</summary>
    private string? Check(out DateOnly? from, out DateOnly? to)
    {
        from = to = null;
        if (Status is not null && !Statuses.Contains(Status))
            return "Status: choose one of the listed statuses.";
        if (Type is { Length: > 63 })
            return "Type: at most 63 characters.";
        if (Actor is { Length: > 200 })
            return "Actor: at most 200 characters.";
        if (Cluster is not null && !Validate.IsDnsLabel(Cluster))
            return "Cluster: " + Validate.DnsLabelRule + ".";
        if (Namespace is not null && !Validate.IsDnsLabel(Namespace))
            return "Namespace: " + Validate.DnsLabelRule + ".";
        if (Before is not null && !JobIds.IsValid(Before))
            return "The page to continue from is not a job id; start again from the newest.";
        if (Blank(From) is { } f)
        {
            if (!DateOnly.TryParseExact(f, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                return "From: a date such as 2026-12-07.";
            from = d;
        }
        if (Blank(To) is { } t)
        {
            if (!DateOnly.TryParseExact(t, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                return "To: a date such as 2026-12-07.";
            to = d;
        }
        return from > to ? "From must not be after To." : null;
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
