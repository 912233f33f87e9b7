using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Opsgate.Server.Secrets;
using Opsgate.Server.Yaml;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>
/// A version's texts as they are stored: every secret variable's value replaced by <see cref="SecretVariables.Redacted"/>.
/// <paramref name="Values"/> holds what was taken out (see <see cref="InventorySecrets"/>); null when there was nothing.
/// </summary>
internal sealed record SealedTexts(string Hosts, string? Vars, string Inventory, string Expanded, JsonObject? Values);

/// <summary>A stored inventory's secret values cannot be put back: ansible must not run with the placeholder.</summary>
internal sealed class InventorySecretsException(string message) : Exception(message);

/// <summary>
/// Takes the values of secret variables (names <see cref="SecretVariables.IsSecret"/> matches) out of a stored
/// inventory's texts, and puts them back for ansible only. A variable is a host var or a group var at any depth of
/// <c>children:</c> (in the vars text: a group's variable); its value is taken whole, whatever it is (a string, a
/// number, a structure). Work is on the parsed YAML and JSON, never on the text: a regex cannot tell a host var from
/// a comment or a multi-line string.
/// </summary>
/// <remarks>
/// What is taken out of one version is one JSON object, kept in the secret store as one secret:
/// <c>{"hosts": {pointer: yaml}, "vars": {...}, "inventory": {...}, "expanded": {pointer: json}}</c>, a section per
/// stored text that had secrets, each variable named by a JSON pointer (RFC 6901) into that text's tree. YAML values
/// are kept as YAML text, so tags (<c>!vault</c>, <c>!unsafe</c>) and scalar types come back as they were sent.
/// </remarks>
internal sealed class InventorySecrets(SecretVariables names)
{
    private const int MaxDepth = 64;
    private const string SecretPrefix = "inventory/";
    private const string SecretSuffix = "/secrets";

    /// <summary>
    /// A new secret store name for one version's values. Random rather than the version's id: the secret is stored
    /// before the version's row exists (so a crash loses no value), and two versions stored at once never share one.
    /// </summary>
    public static string NewSecretName() => SecretPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)) + SecretSuffix;

    /// <summary>True for a name <see cref="NewSecretName"/> makes: a job may name no other secret.</summary>
    public static bool IsSecretName(string? name) =>
        name is not null && name.Length == SecretPrefix.Length + 32 + SecretSuffix.Length
        && name.StartsWith(SecretPrefix, StringComparison.Ordinal) && name.EndsWith(SecretSuffix, StringComparison.Ordinal)
        && name[SecretPrefix.Length..^SecretSuffix.Length].All(char.IsAsciiHexDigitLower);

    /// <summary>
    /// The texts of a version with secret values replaced. A text without any is returned unchanged (a YAML text with
    /// some is written out again, without its comments). With <paramref name="refusePlaceholders"/>, a secret
    /// variable already holding the placeholder (a GET's answer sent back) is an <see cref="InventoryYamlException"/>:
    /// the value it stood for is not known here.
    /// </summary>
    public SealedTexts Seal(string hosts, string? vars, string inventory, string expanded, bool refusePlaceholders)
    {
        var values = new JsonObject();
        var sealedHosts = SealYaml("hosts", hosts, varsText: false, refusePlaceholders, values)!;
        var sealedVars = SealYaml("vars", vars, varsText: true, refusePlaceholders, values);
        var sealedInventory = SealYaml("inventory", inventory, varsText: false, refuse: false, values)!;

        var list = JsonNode.Parse(expanded)!.AsObject();
        var taken = new JsonObject();
        foreach (var (pointer, owner, key) in JsonVariables(list))
        {
            if (!names.IsSecret(key) || SecretVariables.IsRedacted(owner[key]))
                continue;
            taken[pointer] = owner[key]?.DeepClone();
            owner[key] = SecretVariables.Redacted;
        }
        if (taken.Count > 0)
            values["expanded"] = taken;
        return new SealedTexts(sealedHosts, sealedVars, sealedInventory, taken.Count > 0 ? list.ToJsonString() : expanded, values.Count > 0 ? values : null);
    }

    /// <summary>A stored version's YAML for ansible: the placeholders replaced by the values of the version's <c>inventory</c> section.</summary>
    public string UnsealInventory(string yaml, JsonObject? values, string what) =>
        Unseal(yaml, what, pointer => (values?["inventory"] as JsonObject)?[pointer] is JsonValue text ? LoadNode(text.GetValue<string>()) : null);

    /// <summary>
    /// A shard's YAML (made by <see cref="InventoryYaml.FromExpansion"/> from a stored version's expansion) for ansible:
    /// each group's vars and each host's vars are found in the version's <c>expanded</c> section.
    /// </summary>
    public string UnsealShard(string yaml, JsonObject? values, string what) =>
        Unseal(yaml, what, pointer => values?["expanded"] is JsonObject expanded && expanded.TryGetPropertyValue(ExpandedPointer(pointer), out var value)
            ? InventoryYaml.ToYaml(value)
            : null);

    /// <summary>
    /// Puts values back where the placeholder is. A secret variable left holding the placeholder fails: ansible would
    /// take "[REDACTED]" for the password (the store was restored apart from the database, or a GET's answer was
    /// used as an inventory).
    /// </summary>
    private string Unseal(string yaml, string what, Func<string, YamlNode?> valueAt)
    {
        if (!yaml.Contains(SecretVariables.Redacted, StringComparison.Ordinal) || Load(yaml) is not { } root)
            return yaml;
        var restored = 0;
        foreach (var (pointer, owner, key) in YamlVariables(root, varsText: false))
        {
            if (!IsPlaceholder(owner.Children[key]))
                continue;
            if (valueAt(pointer) is { } value)
            {
                owner.Children[key] = value;
                restored++;
            }
            else if (names.IsSecret(key.Value!))
            {
                throw new InventorySecretsException(
                    $"{what}: the secret value of {Describe(pointer)} is not in the secret store, only the placeholder {SecretVariables.Redacted}; " +
                    "store the inventory again with the value (was the secret store restored apart from the database?)");
            }
        }
        return restored > 0 ? InventoryYaml.Save(root) : yaml;
    }

    private string? SealYaml(string field, string? text, bool varsText, bool refuse, JsonObject values)
    {
        if (text is null || Load(text) is not { } root)
            return text;
        var taken = new JsonObject();
        foreach (var (pointer, owner, key) in YamlVariables(root, varsText))
        {
            if (!names.IsSecret(key.Value!))
                continue;
            var value = owner.Children[key];
            if (IsPlaceholder(value))
            {
                if (refuse)
                    throw new InventoryYamlException(field, $"line {value.Start.Line}, column {value.Start.Column}: the value of {Describe(pointer)} is " +
                        $"{SecretVariables.Redacted}, the placeholder shown for a secret value: send the value itself");
                continue;
            }
            taken[pointer] = InventoryYaml.Save(value);
            owner.Children[key] = new YamlScalarNode(SecretVariables.Redacted) { Style = ScalarStyle.DoubleQuoted };
        }
        if (taken.Count == 0)
            return text;
        values[field] = taken;
        return InventoryYaml.Save(root);
    }

    /// <summary>
    /// Every variable of a YAML inventory with its JSON pointer: each group's <c>vars:</c> and each host's mapping
    /// under <c>hosts:</c>, through <c>children:</c> at any depth. In the vars text (<paramref name="varsText"/>) the
    /// top level maps groups straight to their variables.
    /// </summary>
    private static List<(string Pointer, YamlMappingNode Owner, YamlScalarNode Key)> YamlVariables(YamlMappingNode root, bool varsText)
    {
        var found = new List<(string, YamlMappingNode, YamlScalarNode)>();
        void Variables(YamlNode? node, string at)
        {
            if (node is not YamlMappingNode mapping)
                return;
            foreach (var key in mapping.Children.Keys)
            {
                if (key is YamlScalarNode { Value: { } name } scalar)
                    found.Add((at + "/" + Escape(name), mapping, scalar));
            }
        }
        void Group(YamlNode node, string at)
        {
            if (node is not YamlMappingNode group)
                return;
            Variables(Child(group, "vars"), at + "/vars");
            foreach (var (host, hostVars) in Entries(Child(group, "hosts")))
                Variables(hostVars, at + "/hosts/" + Escape(host));
            foreach (var (child, definition) in Entries(Child(group, "children")))
                Group(definition, at + "/children/" + Escape(child));
        }
        foreach (var (group, definition) in Entries(root))
        {
            if (varsText)
                Variables(definition, "/" + Escape(group));
            else
                Group(definition, "/" + Escape(group));
        }
        return found;
    }

    /// <summary>Every variable of an expansion (<c>ansible-inventory --list --export</c>): <c>_meta.hostvars</c> and each group's <c>vars</c>.</summary>
    private static List<(string Pointer, JsonObject Owner, string Key)> JsonVariables(JsonObject list)
    {
        var found = new List<(string, JsonObject, string)>();
        void Variables(JsonNode? node, string at)
        {
            if (node is JsonObject vars)
                found.AddRange(vars.Select(p => (at + "/" + Escape(p.Key), vars, p.Key)));
        }
        foreach (var (group, node) in list)
        {
            if (group == "_meta")
            {
                foreach (var (host, hostVars) in node?["hostvars"] as JsonObject ?? [])
                    Variables(hostVars, "/_meta/hostvars/" + Escape(host));
            }
            else
            {
                Variables(node?["vars"], "/" + Escape(group) + "/vars");
            }
        }
        return found;
    }

    /// <summary>Where a variable of a shard's YAML (<c>/group/vars/x</c>, <c>/group/hosts/host/x</c>) is in the expansion it was made from.</summary>
    private static string ExpandedPointer(string pointer)
    {
        var parts = pointer.Split('/');
        return parts is ["", _, "hosts", var host, var name] ? $"/_meta/hostvars/{host}/{name}" : pointer;
    }

    /// <summary>"variable 'x' of host 'h' in group 'g'" for a pointer, without any value.</summary>
    private static string Describe(string pointer)
    {
        var parts = pointer.Split('/').Skip(1).Select(Unescape).ToList();
        var name = parts[^1];
        var hostAt = parts.LastIndexOf("hosts");
        return hostAt >= 0 && hostAt == parts.Count - 3
            ? $"variable '{name}' of host '{parts[^2]}'"
            : $"variable '{name}' of group '{(parts.Count >= 3 && parts[^2] == "vars" ? parts[^3] : parts[^2])}'";
    }

    private static List<(string Name, YamlNode Value)> Entries(YamlNode? node) =>
        node is YamlMappingNode mapping
            ? mapping.Children.Where(p => p.Key is YamlScalarNode { Value: not null }).Select(p => (((YamlScalarNode)p.Key).Value!, p.Value)).ToList()
            : [];

    private static YamlNode? Child(YamlMappingNode mapping, string key) => mapping.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    private static bool IsPlaceholder(YamlNode node) => node is YamlScalarNode { Value: SecretVariables.Redacted };

    /// <summary>The root mapping of a stored text (each was checked when stored); null for anything else.</summary>
    private static YamlMappingNode? Load(string text)
    {
        var stream = SafeYaml.Load(text, MaxDepth);
        return stream.Documents.Count == 1 ? stream.Documents[0].RootNode as YamlMappingNode : null;
    }

    private static YamlNode LoadNode(string text) => SafeYaml.Load(text, MaxDepth).Documents[0].RootNode;

    private static string Escape(string segment) => segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string Unescape(string segment) => segment.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
}
