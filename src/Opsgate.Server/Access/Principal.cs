using System.Security.Claims;

namespace Opsgate.Server.Access;

/// <summary>Who is calling, as Opsgate sees it, whatever the authentication method.</summary>
internal sealed record Principal(string Id, string Name, Role? Role, IReadOnlyList<string>? Namespaces, string AuthMethod)
{
    public const string IdClaim = "opsgate:id";
    public const string RoleClaim = "opsgate:role";
    public const string NamespaceClaim = "opsgate:namespace";
    public const string NoNamespacesClaim = "opsgate:no-namespace-allowlist";
    public const string MethodClaim = "opsgate:auth";
    public const string GroupClaim = "opsgate:group";

    /// <summary>
    /// The OIDC groups of the caller: every value of the configured role claim, mapped to a role or not (credential use
    /// rules name them). API keys have none.
    /// </summary>
    public IReadOnlyList<string> Groups { get; init; } = [];

    /// <summary>True when the principal's own allowlist (if any) lets it act in <paramref name="ns"/>.</summary>
    public bool MayUseNamespace(string ns) => Namespaces is null || Namespaces.Contains(ns, StringComparer.Ordinal);

    public ClaimsPrincipal ToClaimsPrincipal()
    {
        var claims = new List<Claim>
        {
            new(IdClaim, Id),
            new(ClaimTypes.Name, Name),
            new(MethodClaim, AuthMethod),
        };
        if (Role is { } role)
            claims.Add(new Claim(RoleClaim, role.Name()));
        if (Namespaces is null)
            claims.Add(new Claim(NoNamespacesClaim, "true"));
        else
            claims.AddRange(Namespaces.Select(ns => new Claim(NamespaceClaim, ns)));
        claims.AddRange(Groups.Select(g => new Claim(GroupClaim, g)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, AuthMethod, ClaimTypes.Name, RoleClaim));
    }

    public static Principal? From(ClaimsPrincipal user)
    {
        if (user.Identity?.IsAuthenticated != true || user.FindFirst(IdClaim) is not { } id)
            return null;
        var namespaces = user.HasClaim(c => c.Type == NoNamespacesClaim)
            ? null
            : user.FindAll(NamespaceClaim).Select(c => c.Value).ToList();
        return new Principal(id.Value, user.Identity.Name ?? id.Value, Roles.ParseOrNull(user.FindFirst(RoleClaim)?.Value), namespaces, user.FindFirst(MethodClaim)?.Value ?? "unknown")
        {
            Groups = user.FindAll(GroupClaim).Select(c => c.Value).ToList(),
        };
    }
}

internal static class PrincipalExtensions
{
    /// <summary>The caller, read from the request's claims once and kept for as long as <see cref="HttpContext.User"/> is the same.</summary>
    public static Principal? Principal(this HttpContext context)
    {
        var user = context.User;
        if (context.Features.Get<ReadPrincipal>() is { } read && ReferenceEquals(read.User, user))
            return read.Principal;
        var principal = Access.Principal.From(user);
        context.Features.Set(new ReadPrincipal(user, principal));
        return principal;
    }

    private sealed record ReadPrincipal(ClaimsPrincipal User, Principal? Principal);
}
