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
}
