using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// The audit log as <c>GET /api/v1/audit</c> serves it (the same filters, the same scope for a reader with a namespace
/// allowlist, newest first in keyset pages), and the hash chain's verification as <c>GET /api/v1/audit/verify</c>.
/// </summary>
internal sealed class AuditModel(AuditLog log, AuditChecks checks) : PageModel
{
    public const int PageSize = 50;
    private const int MaxFilter = 256;

    [BindProperty(SupportsGet = true)] public string? Actor { get; set; }
    [BindProperty(SupportsGet = true)] public string? Action { get; set; }
    [BindProperty(SupportsGet = true, Name = "namespace")] public string? Namespace { get; set; }
    [BindProperty(SupportsGet = true)] public string? Cluster { get; set; }
    [BindProperty(SupportsGet = true)] public string? From { get; set; }
    [BindProperty(SupportsGet = true)] public string? To { get; set; }
    [BindProperty(SupportsGet = true)] public string? Before { get; set; }

    public string? Error { get; private set; }
    public IReadOnlyList<AuditEntry> Rows { get; private set; } = [];
    public long? NextBefore { get; private set; }
    public AuditChecks.Check? Verification { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        Verification = checks.Last ?? await checks.TryFirstAsync(log, HttpContext.Principal()!.Name, ct);
        Error = Check(out var query);
        if (Error is not null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        var me = HttpContext.Principal()!;
        var rows = await log.QueryAsync(query! with { Reader = new AuditReader(me.Id, me.Namespaces) }, ct);
        Rows = rows.Count > PageSize ? rows.Take(PageSize).ToList() : rows;
        NextBefore = rows.Count > PageSize ? Rows[^1].Id : null;
    }

    /// <summary>Verifies the chain now, then shows the same list again.</summary>
    public async Task<IActionResult> OnPostVerifyAsync(CancellationToken ct)
    {
        await checks.RunAsync(log, HttpContext.Principal()!.Name, ct);
        Response.Headers.Location = PageUrl(Blank(Before));
        return StatusCode(StatusCodes.Status303SeeOther);
    }

    /// <summary>The filters as they are now, for links and the verify form.</summary>
    public IReadOnlyDictionary<string, string> Filters => new Dictionary<string, string?>(StringComparer.Ordinal)
    {
        ["actor"] = Blank(Actor), ["action"] = Blank(Action), ["namespace"] = Blank(Namespace), ["cluster"] = Blank(Cluster),
        ["from"] = Blank(From), ["to"] = Blank(To),
    }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value!, StringComparer.Ordinal);

    /// <summary>This list's address with the same filters, starting after entry <paramref name="before"/> (null: the newest).</summary>
    public string PageUrl(string? before)
    {
        var query = new Dictionary<string, string?>(Filters.ToDictionary(p => p.Key, p => (string?)p.Value), StringComparer.Ordinal);
        if (before is not null)
            query["before"] = before;
        return QueryHelpers.AddQueryString("/audit", query);
    }

    /// <summary>The query the filters make, or the first problem with them in words for the page.</summary>
    private string? Check(out AuditQuery? query)
    {
        query = null;
        foreach (var (name, value) in new[] { ("Actor", Blank(Actor)), ("Action", Blank(Action)), ("Namespace", Blank(Namespace)), ("Cluster", Blank(Cluster)) })
        {
            if (value is { Length: > MaxFilter })
                return $"{name}: at most {MaxFilter} characters.";
            if (value is not null && value.Any(char.IsControl))
                return $"{name}: no control characters.";
        }
        long? before = null;
        if (Blank(Before) is { } b)
        {
            if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id < 1)
                return "The page to continue from is not an entry number; start again from the newest.";
            before = id;
        }
        DateTime? since = null, until = null;
        if (Blank(From) is { } f)
        {
            if (!DateOnly.TryParseExact(f, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                return "From: a date such as 2026-12-07.";
            since = d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        }
        if (Blank(To) is { } t)
        {
            if (!DateOnly.TryParseExact(t, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                return "To: a date such as 2026-12-07.";
            until = d.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc);
        }
        if (since >= until)
            return "From must not be after To.";
        query = new AuditQuery(Blank(Actor), Blank(Action), Blank(Namespace), since, until, before, PageSize + 1, Blank(Cluster));
        return null;
    }

    public static string StatusClass(string status) => status switch
    {
        AuditStatus.Success => "ok",
        AuditStatus.Denied => "degraded",
        _ => "error",
    };

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
