using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Routing;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Ui;

/// <summary>Marks the console's endpoints (pages and assets): they sign in with the session cookie and get <see cref="UiHeaders"/>.</summary>
internal sealed class UiEndpoint;

/// <summary>
/// A console session: an API key typed into the sign-in form is checked like the API checks it and exchanged for a
/// cookie holding a protected ticket with the key's id (never the key). Each request re-reads the key by id, so a
/// revoked or expired key ends its sessions at once and a changed role or allowlist applies at once. A session made
/// by OIDC sign-in (<see cref="UiOidc"/>) carries the provider's answer instead and is not re-read. The cookie is
/// HttpOnly and SameSite=Strict, Secure when the request came over HTTPS, and lapses after <see cref="Lifetime"/>.
/// </summary>
internal sealed class UiSession(ApiKeyStore keys, TimeProvider time)
{
    public const string Scheme = "Session";
    public const string CookieName = "opsgate_session";
    /// <summary>A session acts as its key: credential use rules and audit entries that name API keys apply to it alike.</summary>
    public const string AuthMethod = "apikey";
    /// <summary>What <see cref="UiOidc"/> sessions carry: the API's word for a principal from an OIDC token.</summary>
    public const string OidcMethod = "oidc";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);
    public static readonly UiEndpoint Marker = new();

    private static readonly HashSet<string> EventStreams = new(["/api/v1/jobs/{id}/events", "/api/v1/jobs/{id}/events/ws"], StringComparer.Ordinal);

    public static void Configure(CookieAuthenticationOptions o)
    {
        o.Cookie.Name = CookieName;
        o.Cookie.HttpOnly = true;
        o.Cookie.SameSite = SameSiteMode.Strict;
        o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        o.ExpireTimeSpan = Lifetime;
        // A fixed lifetime from sign-in: an open tab polling live events must not keep a session alive for ever.
        o.SlidingExpiration = false;
        o.LoginPath = "/signin";
        o.Events = new CookieAuthenticationEvents
        {
            OnValidatePrincipal = context => context.HttpContext.RequestServices.GetRequiredService<UiSession>().ValidateAsync(context),
        };
    }

    /// <summary>True for a console page or asset.</summary>
    public static bool IsConsole(HttpContext context) => context.GetEndpoint()?.Metadata.GetMetadata<UiEndpoint>() is not null;

    /// <summary>
    /// The session cookie authenticates a console page, or a GET of a job's event stream, and only when the request
    /// carries no API key or token (those keep their meaning). Every other API route ignores the cookie, so no
    /// state-changing call can ride on it without the console's antiforgery check.
    /// </summary>
    public static bool Selects(HttpContext context)
    {
        var request = context.Request;
        if (request.Headers.ContainsKey("X-API-Key") || request.Headers.ContainsKey("Authorization") || !request.Cookies.ContainsKey(CookieName))
            return false;
        if (IsConsole(context))
            return true;
        return HttpMethods.IsGet(request.Method) && context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } route } && EventStreams.Contains(route);
    }

    /// <summary>The key's principal, or the reason it may not sign in (the same reasons the API gives).</summary>
    public async Task<(Principal? Principal, string? Refusal)> CheckKeyAsync(string? key, CancellationToken ct)
    {
        key = key?.Trim();
        if (string.IsNullOrEmpty(key))
            return (null, "enter an API key");
        if (key.Length is < 16 or > 256 || await keys.FindAsync(key, ct) is not { } row)
            return (null, "the API key is not valid");
        return Refusal(row) is { } refusal ? (null, refusal) : (ToPrincipal(row), null);
    }

    public static async Task SignInAsync(HttpContext http, Principal principal) =>
        await http.SignInAsync(Scheme, principal.ToClaimsPrincipal(), new AuthenticationProperties { IsPersistent = false, AllowRefresh = false });

    private async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        // An OIDC session has no key to read again: it keeps the role the provider gave at sign-in until it lapses.
        if (context.Principal?.FindFirst(Principal.MethodClaim)?.Value == OidcMethod)
            return;
        var id = context.Principal?.FindFirst(Principal.IdClaim)?.Value;
        var row = id is null ? null : await keys.FindByIdAsync(id, context.HttpContext.RequestAborted);
        if (row is null || Refusal(row) is not null)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(Scheme);
            return;
        }
        context.ReplacePrincipal(ToPrincipal(row).ToClaimsPrincipal());
    }

    private string? Refusal(ApiKeyRow row)
    {
        if (row.RevokedAt is not null)
            return $"the API key {row.Id} was revoked";
        if (row.ExpiresAt is { } expires && expires <= time.GetUtcNow().UtcDateTime)
            return $"the API key {row.Id} expired at {expires:O}";
        return null;
    }

    private static Principal ToPrincipal(ApiKeyRow row) => new(row.Id, row.Name, Roles.ParseOrNull(row.Role), row.NamespaceList, AuthMethod);

    /// <summary>Audits a console action the way the API audits its route of the same meaning (same action name).</summary>
    public static Task AuditAsync(HttpContext http, string action, string resourceKind, string status, int httpStatus, string? error) =>
        http.WriteAuditAsync(status, httpStatus, error, new Endpoint(null, new EndpointMetadataCollection(new AuditedAttribute(action, resourceKind)), action));
}
