using System.Text.Json;

namespace Opsgate.Server.Auth;

/// <summary>
/// Turns a validated OIDC token's payload into an Opsgate <see cref="Principal"/>: the highest role found
/// under the configured claim path (Keycloak <c>realm_access.roles</c>, Okta <c>groups</c>), mapped through
/// <see cref="OidcOptions.RoleMap"/>. A token with no known role authenticates but gets no role, so every
/// endpoint answers 403 and names the claim that was checked.
/// </summary>
internal static class OidcRoleMapping
{
    public static Principal ToPrincipal(string encodedPayload, OidcOptions options)
    {
        using var payload = JsonDocument.Parse(Base64UrlDecode(encodedPayload));
        var root = payload.RootElement;
        var subject = Strings(root, "sub").FirstOrDefault() ?? "unknown";
        var name = Strings(root, options.NameClaim).FirstOrDefault() ?? subject;

        Role? best = null;
        foreach (var value in Strings(root, options.RoleClaim))
        {
            var mapped = options.RoleMap.TryGetValue(value, out var m) ? m : value;
            if (Roles.TryParse(mapped, out var role) && (best is null || role > best))
                best = role;
        }
        IReadOnlyList<string>? namespaces = options.NamespacesClaim is { Length: > 0 } nsClaim && Find(root, nsClaim) is not null
            ? Strings(root, nsClaim).ToList()
            : null;
        return new Principal("oidc:" + subject, name, best, namespaces, "oidc");
    }

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
