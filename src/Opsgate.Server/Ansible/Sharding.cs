using System.Globalization;
using System.Text.Json.Nodes;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Yaml;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Ansible;

/// <summary>
/// The pure parts of a sharded run: how many shards, which hosts go where, the inventory each shard runs with, and
/// whether a playbook may be sharded at all.
/// </summary>
internal static class Sharding
{
    public const int MaxShards = 64;

    /// <summary>Deeper than any playbook nests; past it the playbook is left to ansible to read.</summary>
    private const int MaxPlaybookDepth = 64;

    /// <summary>
    /// The <c>shards</c> input as a count: null for one plain run (absent or 1), 0 for <c>auto</c>, else 2..64.
    /// Throws <see cref="FormatException"/> with the rule when the value is neither.
    /// </summary>
    public static int? Requested(JsonNode? shards)
    {
        switch (shards)
        {
            case null:
                return null;
            case JsonValue v when v.TryGetValue<string>(out var text) && text == "auto":
                return 0;
            case JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.Number
                                  && int.TryParse(v.ToJsonString(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxShards:
                return n == 1 ? null : n;
            default:
                throw new FormatException($"must be an integer between 1 and {MaxShards}, or \"auto\"");
        }
    }

    /// <summary>How many shards <paramref name="requested"/> (0 = auto) makes of <paramref name="hosts"/> hosts: never more than the hosts.</summary>
    public static int Count(int requested, int hosts, int hostsPerAutoShard)
    {
        var n = requested == 0 ? (hosts + hostsPerAutoShard - 1) / hostsPerAutoShard : requested;
        return Math.Clamp(Math.Min(n, hosts), 1, MaxShards);
    }

    /// <summary>
    /// Contiguous chunks in the inventory's own order, sizes differing by at most one: each shard keeps the hosts of a
    /// group together (ansible visits them in the same relative order as in one run), and shard i is easy to explain.
    /// </summary>
    public static List<IReadOnlyList<string>> Partition(IReadOnlyList<string> hosts, int shards)
    {
        var chunks = new List<IReadOnlyList<string>>(shards);
        var at = 0;
        for (var i = 0; i < shards; i++)
        {
            var size = hosts.Count / shards + (i < hosts.Count % shards ? 1 : 0);
            chunks.Add(hosts.Skip(at).Take(size).ToList());
            at += size;
        }
        return chunks;
    }

    /// <summary>The inventory of one shard: only its hosts, with all the groups, their vars and children (see <see cref="InventoryYaml.FromExpansion"/>).</summary>
    public static string Inventory(JsonObject list, IReadOnlyCollection<string> shardHosts) =>
        InventoryYaml.FromExpansion(list, shardHosts as IReadOnlySet<string> ?? new HashSet<string>(shardHosts, StringComparer.Ordinal));

    /// <summary>
    /// Why a playbook must not be sharded, or null. A shard runs the playbook on part of the hosts, so <c>run_once</c>
    /// would run once per shard and <c>serial</c> batches would be cut per shard; a play can also be marked by its
    /// author with <c>vars: {opsgate_shardable: false}</c> (cross-host facts, delegate_to another shard's host...).
    /// Read from the playbook file itself, not from roles or imported files; a playbook that is not YAML is left to
    /// ansible to report.
    /// </summary>
    public static string? Refusal(string playbookYaml)
    {
        YamlStream stream;
        try
        {
            stream = SafeYaml.Load(playbookYaml, MaxPlaybookDepth);
        }
        catch (SafeYamlException)
        {
            return null; // ansible reports what it cannot read; anchors and aliases it resolves itself
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlSequenceNode plays)
            return null;
        foreach (var play in plays.OfType<YamlMappingNode>())
        {
            var name = Scalar(play, "name") ?? Scalar(play, "hosts") ?? "(unnamed)";
            if (play.Children.ContainsKey(new YamlScalarNode("serial")))
                return $"play '{name}' sets serial (its batches would be cut per shard)";
            if (play.Children.TryGetValue(new YamlScalarNode("vars"), out var vars) && vars is YamlMappingNode v && IsFalse(Scalar(v, "opsgate_shardable")))
                return $"play '{name}' is marked opsgate_shardable: false";
            if (RunOnce(play) is { } task)
                return $"{task} uses run_once (it would run once per shard)";
        }
        return null;
    }

    private static string? RunOnce(YamlNode node, string where = "")
    {
        switch (node)
        {
            case YamlMappingNode map:
                var here = Scalar(map, "name") is { } n ? $"task '{n}'" : where;
                if (Scalar(map, "run_once") is { } value && !IsFalse(value))
                    return here.Length > 0 ? here : "a play";
                foreach (var child in map.Children.Values)
                {
                    if (RunOnce(child, here) is { } found)
                        return found;
                }
                return null;
            case YamlSequenceNode sequence:
                return sequence.Select(c => RunOnce(c, where)).FirstOrDefault(f => f is not null);
            default:
                return null;
        }
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode s ? s.Value : null;

    private static bool IsFalse(string? value) => value is "false" or "False" or "FALSE" or "no" or "No" or "NO" or "0";
}
