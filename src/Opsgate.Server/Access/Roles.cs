using System.Diagnostics.CodeAnalysis;

namespace Opsgate.Server.Access;

/// <summary>Ordered: each role can do everything the ones below it can.</summary>
internal enum Role
{
    Viewer = 1,
    Operator = 2,
    Approver = 3,
    Admin = 4,
}

internal static class Roles
{
    public const string AllNames = "viewer, operator, approver, admin";

    public static bool TryParse(string? value, [NotNullWhen(true)] out Role? role)
    {
        role = value?.Trim().ToLowerInvariant() switch
        {
            "viewer" => Role.Viewer,
            "operator" => Role.Operator,
            "approver" => Role.Approver,
            "admin" => Role.Admin,
            _ => null,
        };
        return role is not null;
    }

    public static Role? ParseOrNull(string? value) => TryParse(value, out var role) ? role : null;

    public static string Name(this Role role) => role.ToString().ToLowerInvariant();

    public static string Policy(Role role) => "role:" + role.Name();
}
