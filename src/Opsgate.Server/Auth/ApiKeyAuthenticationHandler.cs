using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;

namespace Opsgate.Server.Auth;

/// <summary>Accepts <c>X-API-Key: K</c> or <c>Authorization: Bearer K</c>.</summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var key = ReadKey(Request);
        if (key is null)
            return AuthenticateResult.NoResult();
        if (key.Length is < 16 or > 256)
            return AuthenticateResult.Fail("the API key is not valid");

        var row = await keys.FindAsync(key, Context.RequestAborted);
        if (row is null)
            return AuthenticateResult.Fail("the API key is not valid");
        if (row.RevokedAt is not null)
            return AuthenticateResult.Fail($"the API key {row.Id} was revoked");
        if (row.ExpiresAt is { } expires && expires <= time.GetUtcNow().UtcDateTime)
            return AuthenticateResult.Fail($"the API key {row.Id} expired at {expires:O}");

        var principal = new Principal(row.Id, row.Name, Roles.ParseOrNull(row.Role), row.NamespaceList, "apikey");
        return AuthenticateResult.Success(new AuthenticationTicket(principal.ToClaimsPrincipal(), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "ApiKey, Bearer";
        return Task.CompletedTask;
    }

    public static string? ReadKey(HttpRequest request)
    {
        if (request.Headers.TryGetValue("X-API-Key", out var header) && header.Count > 0 && !string.IsNullOrWhiteSpace(header[0]))
            return header[0]!.Trim();
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return authorization["Bearer ".Length..].Trim();
        return null;
    }

    /// <summary>
    /// What the audit log may keep of a key that was sent: as much as <c>key_prefix</c> keeps of a real key, so a tried key
    /// can be matched to one, but never more than half of it, so a short secret sent by mistake is never kept whole.
    /// Null when no key was sent, or a token (whose first characters are its header, not an id).
    /// </summary>
    public static string? TriedKeyPrefix(HttpRequest request)
    {
        if (LooksLikeJwt(request) || ReadKey(request) is not { } key)
            return null;
        var length = Math.Min(ApiKeyStore.PrefixLength, key.Length / 2);
        return length == 0 ? null : key[..length];
    }

    /// <summary>A JWT has three dot-separated parts; Opsgate API keys contain no dot.</summary>
    public static bool LooksLikeJwt(HttpRequest request) =>
        !request.Headers.ContainsKey("X-API-Key")
        && request.Headers.Authorization.ToString() is var a
        && a.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
        && a.Count(c => c == '.') == 2;
}
