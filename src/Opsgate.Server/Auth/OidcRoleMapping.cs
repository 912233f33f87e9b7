using System.Text.Json;
using Opsgate.Server.Access;

namespace Opsgate.Server.Auth;

/// <summary>
/// Turns a validated OIDC token's payload into an Opsgate <see cref="Principal"/>: the highest role found
/// under the configured claim path (Keycloak <c>realm_access.roles</c>, Okta <c>groups</c>), mapped through
/// <see cref="OidcOptions.RoleMap"/>. A token with no known role authenticates but gets no role, so every
/// endpoint answers 403 and names the claim that was checked. Every value under that claim, mapped or not, is also
/// one of the principal's groups (credential use rules name them).
/// </summary>
internal static class OidcRoleMapping
{
    /// <summary>The principal, or null when the token has no <c>sub</c> (then nothing identifies the caller for sure).</summary>
    public static Principal? ToPrincipal(string encodedPayload, OidcOptions options)
    {
        using var payload = JsonDocument.Parse(Base64UrlDecode(encodedPayload));
        var root = payload.RootElement;
        if (Strings(root, "sub").FirstOrDefault() is not { Length: > 0 } subject)
            return null;
        var name = Strings(root, options.NameClaim).FirstOrDefault() ?? subject;

        Role? best = null;
        var groups = Strings(root, options.RoleClaim).Distinct(StringComparer.Ordinal).ToList();
        foreach (var value in groups)
        {
            var role = options.RoleMap.TryGetValue(value, out var mapped) ? Roles.ParseOrNull(mapped) : ExactRole(value);
            if (role is not null && (best is null || role > best))
                best = role;
        }
        IReadOnlyList<string>? namespaces = options.NamespacesClaim is { Length: > 0 } nsClaim && Find(root, nsClaim) is not null
            ? Strings(root, nsClaim).ToList()
            : null;
        return new Principal("oidc:" + subject, name, best, namespaces, "oidc") { Groups = groups };
    }

    /// <summary>
    /// An unmapped value counts only when spelled exactly like a role: an Okta group "Admin" must not make its
    /// members Opsgate admins by accident.
    /// </summary>
    private static Role? ExactRole(string value) =>
        Roles.ParseOrNull(value) is { } role && role.Name() == value ? role : null;

    /// <summary>The string or strings at a dotted path; a claim name that itself contains dots is tried whole first.</summary>
    private static IEnumerable<string> Strings(JsonElement root, string path)
    {
        var element = Find(root, path);
        if (element is not { } e)
            yield break;
        if (e.ValueKind == JsonValueKind.String)
        {
            yield return e.GetString()!;
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in e.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String)
                    yield return item.GetString()!;
            }
        }
    }

    private static JsonElement? Find(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return null;
        if (root.TryGetProperty(path, out var whole))
            return whole;
        var current = root;
        foreach (var part in path.Split('.'))
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(part, out current))
                return null;
        }
        return current;
    }

    private static byte[] Base64UrlDecode(string value)
    {
        var s = value.Replace('-', '+').Replace('_', '/');
        s = s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
        return Convert.FromBase64String(s);
    }
}
