using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Opsgate.Server.Yaml;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>A field of an inventory that is not usable; the message names the line and column where there is one.</summary>
internal sealed class InventoryYamlException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>
/// The YAML side of a stored inventory: <c>hosts</c> and <c>vars</c> as sent (YAML text, or a JSON object turned
/// into YAML), checked for well-formedness, and merged into the one inventory ansible reads. This checks only what
/// the merge needs (a mapping of groups); <c>ansible-inventory</c> is the authority on everything else.
/// </summary>
internal static partial class InventoryYaml
{
    private const int MaxDepth = 64;

    /// <summary>YAML text of a field given as a YAML string or as a JSON object; null when the field is absent.</summary>
    public static string? Text(string field, JsonNode? value) => value switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o => Save(ToYaml(o)),
        _ => throw new InventoryYamlException(field, "must be Ansible YAML text or a JSON object"),
    };

    /// <summary>The inventory ansible reads: <paramref name="hosts"/>, with each group's variables from <paramref name="vars"/> added to that group.</summary>
    public static string Merge(string hosts, string? vars)
    {
        var root = ParseMapping("hosts", hosts, "a mapping of groups (all:, webservers:, ...) as in an Ansible YAML inventory");
        if (vars is null)
            return hosts;
        var groups = GroupsOf(root);
        var varsRoot = ParseMapping("vars", vars, "a mapping of group names to their variables (all: {ntp_server: ...})");
        foreach (var (keyNode, value) in varsRoot.Children)
        {
            var group = ((YamlScalarNode)keyNode).Value ?? "";
            if (group != "all" && !groups.Contains(group))
                throw new InventoryYamlException("vars", $"{At(keyNode)}group '{group}' is not a group in hosts");
            if (IsNull(value))
                continue;
            if (value is not YamlMappingNode variables)
                throw new InventoryYamlException("vars", $"{At(value)}the variables of group '{group}' must be a mapping of names to values");
            var definition = root.Children.TryGetValue(new YamlScalarNode(group), out var existing) ? existing : null;
            if (definition is null || IsNull(definition))
            {
                definition = new YamlMappingNode();
                root.Children[new YamlScalarNode(group)] = definition;
            }
            if (definition is not YamlMappingNode groupNode)
                throw new InventoryYamlException("hosts", $"{At(definition)}group '{group}' must be a mapping (hosts:, children:, vars:)");
            if (!groupNode.Children.TryGetValue(new YamlScalarNode("vars"), out var groupVars) || IsNull(groupVars))
            {
                groupVars = new YamlMappingNode();
                groupNode.Children[new YamlScalarNode("vars")] = groupVars;
            }
            if (groupVars is not YamlMappingNode target)
                throw new InventoryYamlException("hosts", $"{At(groupVars)}the vars of group '{group}' must be a mapping");
            foreach (var (name, v) in variables.Children)
                target.Children[name] = v; // vars wins over the same variable set in hosts
        }
        return Save(root);
    }

    /// <summary>
    /// An Ansible YAML inventory that ansible expands to <paramref name="list"/> (<c>ansible-inventory --list --export</c>
    /// output): every group at the top level with its hosts, children and vars; each host's vars on its first listing.
    /// With <paramref name="only"/>, just those hosts (a shard's): every group with its vars and children is kept (a
    /// play aimed at a group with none of them matches nothing), so ansible parses only these hosts.
    /// </summary>
    public static string FromExpansion(JsonObject list, IReadOnlySet<string>? only = null)
    {
        var hostVars = list["_meta"]?["hostvars"] as JsonObject;
        var placed = new HashSet<string>(StringComparer.Ordinal);
        var root = new YamlMappingNode();
        foreach (var (group, node) in list.OrderBy(p => p.Key == "all" ? 0 : 1))
        {
            if (group == "_meta" || node is not JsonObject g)
                continue;
            var definition = new YamlMappingNode();
            if (g["hosts"] is JsonArray { Count: > 0 } hosts)
            {
                var mapping = new YamlMappingNode();
                foreach (var host in hosts.Select(h => h?.GetValue<string>()).OfType<string>().Where(h => only is null || only.Contains(h)))
                    mapping.Add(Scalar(host), placed.Add(host) && hostVars?[host] is JsonObject { Count: > 0 } v ? ToYaml(v) : ToYaml(null));
                if (mapping.Children.Count > 0)
                    definition.Add("hosts", mapping);
            }
            if (g["children"] is JsonArray { Count: > 0 } children)
                definition.Add("children", new YamlMappingNode(children.Select(c => c?.GetValue<string>()).OfType<string>()
                    .Select(c => new KeyValuePair<YamlNode, YamlNode>(Scalar(c), ToYaml(null)))));
            if (g["vars"] is JsonObject { Count: > 0 } vars)
                definition.Add("vars", ToYaml(vars));
            root.Add(Scalar(group), definition);
        }
        return Save(root);
    }

    /// <summary>
    /// The first host in <paramref name="hosts"/> (a group's <c>hosts:</c>, at any depth of <c>children:</c>) whose range
    /// ansible cannot expand, with its line; null when there is none. For after ansible refused the inventory: its
    /// message names neither the host nor the line.
    /// </summary>
    public static string? MalformedHostRange(string hosts)
    {
        string? Visit(YamlMappingNode groups)
        {
            foreach (var group in groups.Children.Values.OfType<YamlMappingNode>())
            {
                if (group.Children.TryGetValue(new YamlScalarNode("hosts"), out var members) && members is YamlMappingNode hostMap)
                {
                    foreach (var key in hostMap.Children.Keys.OfType<YamlScalarNode>())
                    {
                        if (key.Value is { } host && HostRanges.Problem(host) is { } problem)
                            return $"{At(key)}host '{host}' {problem}";
                    }
                }
                if (group.Children.TryGetValue(new YamlScalarNode("children"), out var children) && children is YamlMappingNode childMap && Visit(childMap) is { } found)
                    return found;
            }
            return null;
        }
        return Visit(ParseMapping("hosts", hosts, "a mapping of groups"));
    }

    private static YamlMappingNode ParseMapping(string field, string text, string expected)
    {
        YamlStream stream;
        try
        {
            stream = SafeYaml.Load(text, MaxDepth);
        }
        catch (SafeYamlException e)
        {
            throw new InventoryYamlException(field, IniHint(field, text) ?? $"not valid YAML at line {e.Line}, column {e.Column}: {e.Reason}");
        }
        if (stream.Documents.Count == 0)
            throw new InventoryYamlException(field, $"is empty: it must be {expected}");
        if (stream.Documents.Count > 1)
            throw new InventoryYamlException(field, $"{At(stream.Documents[1].RootNode)}holds more than one YAML document");
        var rootNode = stream.Documents[0].RootNode;
        if (rootNode is not YamlMappingNode root)
            throw new InventoryYamlException(field, IniHint(field, text) ?? $"{At(rootNode)}must be {expected}");
        foreach (var key in root.Children.Keys)
        {
            if (key is not YamlScalarNode { Value.Length: > 0 })
                throw new InventoryYamlException(field, $"{At(key)}group names must be plain text");
        }
        return root;
    }

    /// <summary>
    /// For hosts that are not a YAML mapping but read as ansible's INI format (a <c>[group]</c> header, or a host line with
    /// <c>name=value</c> variables): stored inventories are Ansible YAML, which Opsgate merges vars into and seals secrets
    /// in, so say that and how to get there rather than report a YAML syntax error.
    /// </summary>
    private static string? IniHint(string field, string text)
    {
        if (field != "hosts")
            return null;
        var lines = text.Split('\n').Select((l, i) => (Text: l.Trim(), Line: i + 1)).Where(l => l.Text.Length > 0 && l.Text[0] is not ('#' or ';'));
        if (lines.FirstOrDefault(l => IniSection().IsMatch(l.Text) || IniHostLine().IsMatch(l.Text)) is not { Text: not null } ini)
            return null;
        return $"line {ini.Line} ('{(ini.Text.Length <= 60 ? ini.Text : ini.Text[..60] + "…")}') reads as an INI inventory, but hosts must be Ansible YAML " +
            "(all: {hosts: ..., children: ...}): convert it with 'ansible-inventory -i FILE --list --yaml', or store it from a file in a project (source), which may be INI";
    }

    [GeneratedRegex(@"^\[[^\[\]\s]+\]$", RegexOptions.CultureInvariant)]
    private static partial Regex IniSection();

    [GeneratedRegex(@"^[^\s:=#{}\[\]]+(\s+[A-Za-z_][A-Za-z0-9_]*=\S*)+$", RegexOptions.CultureInvariant)]
    private static partial Regex IniHostLine();

    /// <summary>Every group named in the inventory: top-level keys and the keys of every <c>children:</c>, at any depth.</summary>
    private static HashSet<string> GroupsOf(YamlMappingNode root)
    {
        var groups = new HashSet<string>(StringComparer.Ordinal);
        void Visit(YamlMappingNode mapping)
        {
            foreach (var (key, value) in mapping.Children)
            {
                if (key is YamlScalarNode { Value: { } name })
                    groups.Add(name);
                if (value is YamlMappingNode group && group.Children.TryGetValue(new YamlScalarNode("children"), out var children) && children is YamlMappingNode childMap)
                    Visit(childMap);
            }
        }
        Visit(root);
        return groups;
    }

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static string At(YamlNode node) => $"line {node.Start.Line}, column {node.Start.Column}: ";

    internal static string Save(YamlNode root)
    {
        using var writer = new StringWriter();
        new YamlStream(new YamlDocument(root)).Save(writer, assignAnchors: false);
        var text = writer.ToString();
        // YamlDotNet ends the stream with a document end marker; ansible does not need it.
        return text.EndsWith("...\n", StringComparison.Ordinal) || text.EndsWith("...\r\n", StringComparison.Ordinal) ? text[..text.LastIndexOf("...", StringComparison.Ordinal)] : text;
    }

    /// <summary>
    /// JSON (an expansion, or an inventory sent as a JSON object) as ansible YAML. ansible's JSON for a tagged value is an
    /// object with one key: <c>{"__ansible_unsafe": text}</c> for <c>!unsafe</c>, <c>{"__ansible_vault": ciphertext}</c>
    /// for <c>!vault</c> (what <c>ansible-inventory --list</c> prints, and what ansible's own JSON reader turns back into
    /// the tagged value); they are written as the tag again, so ansible reading the YAML sees the value it would have seen
    /// in the source: a string it never templates, an encrypted value it decrypts.
    /// </summary>
    internal static YamlNode ToYaml(JsonNode? node) => node switch
    {
        null => new YamlScalarNode("null") { Style = ScalarStyle.Plain },
        JsonObject { Count: 1 } o when Tagged(o) is { } tagged => tagged,
        JsonObject o => new YamlMappingNode(o.Select(p => new KeyValuePair<YamlNode, YamlNode>(Scalar(p.Key), ToYaml(p.Value)))),
        JsonArray a => new YamlSequenceNode(a.Select(ToYaml)),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => Scalar(v.GetValue<string>()),
        _ => new YamlScalarNode(node.ToJsonString()) { Style = ScalarStyle.Plain }, // numbers, true, false
    };

    private static YamlScalarNode? Tagged(JsonObject o)
    {
        var (key, value) = o.First();
        if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
            return null;
        return key switch
        {
            // Double quoted: every character, "{{" and line breaks included, comes back as it was.
            UnsafeKey => new YamlScalarNode(v.GetValue<string>()) { Tag = "!unsafe", Style = ScalarStyle.DoubleQuoted },
            // Literal, as ansible-vault writes it: the ciphertext is lines of hex.
            VaultKey => new YamlScalarNode(v.GetValue<string>()) { Tag = "!vault", Style = ScalarStyle.Literal },
            _ => null,
        };
    }

    private const string UnsafeKey = "__ansible_unsafe";
    private const string VaultKey = "__ansible_vault";

    /// <summary>A string stays a string in ansible's YAML 1.1: anything that could read as a number, boolean, null or date is quoted.</summary>
    private static YamlScalarNode Scalar(string text) =>
        new(text) { Style = text.Length == 0 || NotPlainString().IsMatch(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any };

    [GeneratedRegex(@"^([-+.~0-9]|(y|n|yes|no|true|false|on|off|null)$)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex NotPlainString();
}
