using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Opsgate.Server.Secrets;

/// <summary>
/// Which variable names hold secrets (Ansible extra vars, inventory host and group vars): their values are kept
/// in the secret store and shown as <see cref="Redacted"/> to everyone. The built-in rule matches names that
/// contain <c>password</c>, <c>passwd</c>, <c>secret</c>, <c>token</c> or <c>private_key</c>/<c>privatekey</c>,
/// <c>ansible_*pass*</c> (ansible_become_pass, ansible_ssh_pass) and <c>vault_*</c>, ignoring case;
/// <c>Secrets:SecretVariableNames</c> adds names (a <c>*</c> matches any run of characters).
/// </summary>
internal sealed partial class SecretVariables
{
    public const string Redacted = "[REDACTED]";

    private readonly Regex? _extra;

    public SecretVariables(IOptions<SecretsOptions> options)
    {
        var names = (options.Value.SecretVariableNames ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length > 0)
            _extra = new Regex("^(" + string.Join('|', names.Select(n => Regex.Escape(n).Replace("\\*", ".*", StringComparison.Ordinal))) + ")$",
                RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }

    public bool IsSecret(string name) => BuiltIn().IsMatch(name) || _extra?.IsMatch(name) == true;

    /// <summary>True when <paramref name="value"/> is the placeholder a redacted value was replaced with.</summary>
    public static bool IsRedacted(JsonNode? value) => value is JsonValue v && v.TryGetValue<string>(out var s) && s == Redacted;

    [GeneratedRegex("pass(word|wd)|secret|token|private_?key|^ansible_.*pass|^vault_", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex BuiltIn();
}
