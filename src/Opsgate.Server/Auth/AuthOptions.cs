using Microsoft.Extensions.Options;
using Opsgate.Server.Access;

namespace Opsgate.Server.Auth;

internal sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>Installed as the admin key named <c>bootstrap-admin</c> at every start; changing it rotates that key.</summary>
    public string? BootstrapAdminKey { get; set; }

    /// <summary>How long a looked-up API key is trusted without asking the database. Revocation on this replica is immediate; other replicas see it within this time.</summary>
    public TimeSpan KeyCacheTtl { get; set; } = TimeSpan.FromSeconds(5);

    public OidcOptions Oidc { get; set; } = new();
}

internal sealed class OidcOptions
{
    /// <summary>Issuer URL; discovery (<c>/.well-known/openid-configuration</c>) and JWKS are fetched from it. Empty disables OIDC.</summary>
    public string? Authority { get; set; }

    /// <summary>Expected <c>aud</c> of tokens.</summary>
    public string? Audience { get; set; }

    /// <summary>Dotted path to the roles claim: <c>realm_access.roles</c> (Keycloak), <c>groups</c> (Okta).</summary>
    public string RoleClaim { get; set; } = "realm_access.roles";

    /// <summary>Maps claim values to Opsgate roles (e.g. <c>ops-admins: admin</c>). Values spelled exactly like a role name (<c>admin</c>, not <c>Admin</c>) map to it without an entry.</summary>
    public Dictionary<string, string> RoleMap { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Dotted path to the claim that names the actor in the audit log.</summary>
    public string NameClaim { get; set; } = "preferred_username";

    /// <summary>Optional path to a namespace allowlist claim (an array of namespaces).</summary>
    public string? NamespacesClaim { get; set; }

    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>
    /// The console's client at the provider. Set, the sign-in page offers "Sign in with OIDC" (authorization code
    /// flow with PKCE); empty, the console takes API keys only.
    /// </summary>
    public string? ClientId { get; set; }

    /// <summary>The client's secret, for a confidential client; a public client (PKCE alone) needs none.</summary>
    public string? ClientSecret { get; set; }

    /// <summary>Scopes asked for at console sign-in besides <c>openid</c>.</summary>
    public string Scopes { get; set; } = "profile";
}

/// <summary>Checks the <c>Auth</c> settings at start; a failure names the key.</summary>
internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        if (options.BootstrapAdminKey is { } key && (key.Length < 16 || key.Any(char.IsWhiteSpace)))
            return Fail("Auth:BootstrapAdminKey", "must be at least 16 characters without whitespace");
        if (options.KeyCacheTtl < TimeSpan.Zero || options.KeyCacheTtl > TimeSpan.FromMinutes(10))
            return Fail("Auth:KeyCacheTtl", $"must be between 00:00:00 and 00:10:00, not {options.KeyCacheTtl}");
        var oidc = options.Oidc;
        if (oidc.Authority is { Length: > 0 } authority)
        {
            if (!Uri.TryCreate(authority, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                return Fail("Auth:Oidc:Authority", $"must be an absolute http(s) URL, not '{authority}'");
            // JwtBearer refuses plain-http metadata only when the first token arrives, as a 500 on every request.
            if (uri.Scheme == "http" && oidc.RequireHttpsMetadata)
                return Fail("Auth:Oidc:Authority", $"must use https, not '{authority}' (set Auth:Oidc:RequireHttpsMetadata=false only for local testing)");
            if (string.IsNullOrWhiteSpace(oidc.Audience))
                return Fail("Auth:Oidc:Audience", "is required when Auth:Oidc:Authority is set");
            if (string.IsNullOrWhiteSpace(oidc.RoleClaim))
                return Fail("Auth:Oidc:RoleClaim", "must name the claim that carries roles (e.g. realm_access.roles or groups)");
            if (oidc.ClientId is { Length: > 0 } client && (client.Length > 200 || client.Any(char.IsWhiteSpace)))
                return Fail("Auth:Oidc:ClientId", "must be the client id registered at the provider: at most 200 characters without whitespace");
            foreach (var (group, role) in oidc.RoleMap)
            {
                if (!Roles.TryParse(role, out _))
                    return Fail($"Auth:Oidc:RoleMap:{group}", $"must be one of {Roles.AllNames}, not '{role}'");
            }
        }
        else if (!string.IsNullOrWhiteSpace(oidc.ClientId))
        {
            return Fail("Auth:Oidc:ClientId", "needs Auth:Oidc:Authority: console sign-in with OIDC asks that provider");
        }
        return ValidateOptionsResult.Success;
    }

    private static ValidateOptionsResult Fail(string key, string problem) => ValidateOptionsResult.Fail($"{key} {problem}");
}
