using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Ui.Pages.Admin;

/// <summary>
/// API keys (admins only, like <c>/api/v1/apikeys</c>): the list without the keys, a form that makes one and shows
/// it once, and revocation. Creation is checked by the API's own rules (<see cref="ApiKeysApi.Check"/>) and both
/// actions are audited under the API's names (<c>apikey.create</c>, <c>apikey.revoke</c>).
/// </summary>
internal sealed class KeysModel(ApiKeyStore keys, TimeProvider time) : PageModel
{
    [BindProperty(SupportsGet = true, Name = "revoked")] public bool IncludeRevoked { get; set; }

    public IReadOnlyList<ApiKeyRow> Keys { get; private set; } = [];
    public string? Error { get; private set; }
    public string? Notice { get; private set; }

    /// <summary>The key just made: shown in this one response (never cached: console pages are no-store), then gone.</summary>
    public CreatedKey? Created { get; private set; }

    /// <summary>What the user typed into the form, kept when it is refused.</summary>
    public string Name { get; private set; } = "";
    public string Role { get; private set; } = "viewer";
    public string Namespaces { get; private set; } = "";
    public string Expires { get; private set; } = "";

    public sealed record CreatedKey(string Id, string Name, string Key);

    public DateTime Now => time.GetUtcNow().UtcDateTime;

    public Task OnGetAsync() => LoadAsync();

    public async Task<IActionResult> OnPostCreateAsync([FromForm] string? name, [FromForm] string? role, [FromForm] string? namespaces, [FromForm] string? expires)
    {
        (Name, Role, Namespaces, Expires) = (name?.Trim() ?? "", role ?? "", namespaces?.Trim() ?? "", expires?.Trim() ?? "");
        var http = HttpContext;
        http.Audit().ResourceName = Name.Length <= 64 ? Name : Name[..64];
        var request = new CreateApiKeyRequest(Name, Role, ParseNamespaces(Namespaces), null);
        string? problem = null;
        if (Expires.Length > 0)
        {
            if (DateTime.TryParseExact(Expires, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var day))
                request = request with { ExpiresAt = DateTime.SpecifyKind(day, DateTimeKind.Utc) };
            else
                problem = "expires_at must be a date (YYYY-MM-DD)";
        }
        http.SetAuditBody(request);
        if (problem is null && ApiKeysApi.Check(request, Now) is { } invalid)
            problem = $"{invalid.Field} {invalid.Problem}";
        if (problem is not null)
        {
            await UiSession.AuditAsync(http, "apikey.create", "apikey", AuditStatus.Error, StatusCodes.Status400BadRequest, problem);
            Error = problem;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            await LoadAsync();
            return Page();
        }
        var (row, key) = await keys.CreateAsync(request.Name, Roles.ParseOrNull(request.Role)!.Value,
            request.Namespaces?.Distinct(StringComparer.Ordinal).ToList(), request.ExpiresAt, http.Principal()!.Name, http.RequestAborted);
        http.Audit().ResourceName = row.Id;
        await UiSession.AuditAsync(http, "apikey.create", "apikey", AuditStatus.Success, StatusCodes.Status201Created, null);
        Created = new CreatedKey(row.Id, row.Name, key);
        (Name, Role, Namespaces, Expires) = ("", "viewer", "", "");
        Response.StatusCode = StatusCodes.Status201Created;
        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeAsync([FromForm] string? id)
    {
        id ??= "";
        var http = HttpContext;
        http.Audit().ResourceName = id.Length <= 64 ? id : id[..64];
        var (status, problem) = ApiKeysApi.KeyId().IsMatch(id)
            ? ApiKeysApi.RevokeOutcomeOf(id, await keys.RevokeAsync(id, http.RequestAborted))
            : (StatusCodes.Status400BadRequest, "id must be an API key id such as ak_3kq9x2mf7pzt");
        await UiSession.AuditAsync(http, "apikey.revoke", "apikey", problem is null ? AuditStatus.Success : AuditStatus.Error, status, problem);
        if (problem is null)
        {
            // Back to the list with a GET, so a reload does not post again.
            Response.Headers.Location = $"/admin/keys?revokedKey={Uri.EscapeDataString(id)}";
            return StatusCode(StatusCodes.Status303SeeOther);
        }
        Error = problem;
        Response.StatusCode = status;
        await LoadAsync();
        return Page();
    }

    private async Task LoadAsync()
    {
        if (Request.Query["revokedKey"].FirstOrDefault() is { } revoked && ApiKeysApi.KeyId().IsMatch(revoked))
            Notice = $"{revoked} is revoked: it stops working at once, and the sessions made with it end at their next request.";
        Keys = await keys.ListAsync(IncludeRevoked, HttpContext.RequestAborted);
    }

    /// <summary>"prod, staging" or "prod staging": blank is no allowlist (every namespace).</summary>
    private static List<string>? ParseNamespaces(string text)
    {
        var parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length == 0 ? null : [.. parts];
    }

    public string StateOf(ApiKeyRow key) =>
        key.RevokedAt is not null ? "revoked" : key.ExpiresAt is { } e && e <= Now ? "expired" : "active";
}
