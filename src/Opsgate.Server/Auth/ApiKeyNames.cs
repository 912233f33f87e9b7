using System.Text.RegularExpressions;

namespace Opsgate.Server.Auth;

/// <summary>What an API key may be called: the rule for new keys, and for the key names a credential's use rules list.</summary>
internal static partial class ApiKeyNames
{
    public const string Rule = "1-63 characters: letters, digits, '-', '_' or '.', starting with a letter or digit";

    public static bool IsValid(string? name) => name is { Length: > 0 and <= 63 } && KeyName().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex KeyName();
}
