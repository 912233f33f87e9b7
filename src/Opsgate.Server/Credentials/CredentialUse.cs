using Opsgate.Server.Access;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Credentials;

/// <summary>
/// Who may use a credential (name it in a job or a project): a principal whose role is at least <see cref="MinRole"/>,
/// OR an API key whose name is in <see cref="Keys"/>, OR an OIDC principal with one of <see cref="Groups"/>. Admins
/// always may: they make credentials and could give themselves any rule.
/// </summary>
internal sealed record CredentialUse(Role MinRole, IReadOnlyList<string> Keys, IReadOnlyList<string> Groups)
{
    public const int MaxEntries = 64;
    public const int MaxGroupLength = 256;

    /// <summary>A credential stored without rules: operators and up, as anyone who could submit a job before rules existed.</summary>
    public static readonly CredentialUse Default = new(Role.Operator, [], []);

    public bool Allows(Principal principal) =>
        principal.Role is { } role && role >= MinRole // admin is the highest min_role: admins always may
        // A key name only counts for API keys: an OIDC user may be called anything, "ci" included.
        || principal.AuthMethod == "apikey" && Keys.Contains(principal.Name, StringComparer.Ordinal)
        || principal.Groups.Any(g => Groups.Contains(g, StringComparer.Ordinal));

    /// <summary>
    /// Null when <paramref name="principal"/> may use credential <paramref name="credential"/> (directly, or through
    /// <paramref name="project"/>, which fetches with it), else a refusal that says who may.
    /// </summary>
    public string? Refusal(string credential, Principal principal, string? project = null)
    {
        if (Allows(principal))
            return null;
        var who = principal.Role is { } role ? $"{principal.Name} has role {role.Name()}" : $"{principal.Name} has no role";
        if (principal.Groups.Count > 0)
            who += $" and groups [{string.Join(", ", principal.Groups)}]";
        var what = project is null ? $"credential '{credential}'" : $"project '{project}' fetches with credential '{credential}', which";
        return $"{what} may be used by {this}; {who}";
    }

    public override string ToString() =>
        $"role {MinRole.Name()}{(MinRole == Role.Admin ? "" : " or higher")}, keys [{string.Join(", ", Keys)}], groups [{string.Join(", ", Groups)}]";

    /// <summary>The error of the first bad value as (field, message), or null; <paramref name="field"/> is where the rules sit in the request.</summary>
    public static (string Field, string Message)? Check(string field, string? minRole, IReadOnlyList<string?>? keys, IReadOnlyList<string?>? groups)
    {
        if (minRole is not null && !Roles.TryParse(minRole, out _))
            return ($"{field}.min_role", $"must be one of {Roles.AllNames}");
        if (keys is { Count: > MaxEntries })
            return ($"{field}.keys", $"at most {MaxEntries} key names");
        foreach (var key in keys ?? [])
        {
            if (key is null || !ApiKeyNames.IsValid(key))
                return ($"{field}.keys", $"each must be an API key name: {ApiKeyNames.Rule}");
        }
        if (groups is { Count: > MaxEntries })
            return ($"{field}.groups", $"at most {MaxEntries} groups");
        foreach (var group in groups ?? [])
        {
            if (group is null || group.Length is 0 or > MaxGroupLength || group.Any(char.IsControl))
                return ($"{field}.groups", $"each must be 1-{MaxGroupLength} characters without control characters");
        }
        return null;
    }
}
