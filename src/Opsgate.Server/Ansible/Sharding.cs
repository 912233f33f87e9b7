using System.Globalization;
using System.Text.Json.Nodes;
using Opsgate.Server.Ansible.Inventories;

namespace Opsgate.Server.Ansible;

/// <summary>
/// The pure parts of a sharded run: how many shards, which hosts go where, the inventory each shard runs with, and
/// how the shards' exit codes make the run's (whether a playbook may be sharded at
/// all is <see cref="ShardableCheck"/>'s).
/// </summary>
internal static class Sharding
{
    public const int MaxShards = 64;

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
    /// The exit code one <c>ansible-playbook</c> run over all the shards' hosts gives, from the shards' own: a shard
    /// that stopped with an error (1, 5, 99, 250...) decides it, the first in shard order; else 4 when a host was
    /// unreachable anywhere, over 2 when one failed, as ansible ranks them; else 1 when a shard never got an exit code
    /// (cancelled before ansible ended, its server died); else 0. Null: no shard got an exit code at all.
    /// </summary>
    public static int? ExitCode(IEnumerable<int?> shards)
    {
        var codes = shards.ToList();
        if (codes.Count == 0 || codes.All(c => c is null))
            return null;
        if (codes.FirstOrDefault(c => c is not null and not (0 or 2 or 4)) is { } error)
            return error;
        return codes.Contains(4) ? 4 : codes.Contains(2) ? 2 : codes.Contains(null) ? 1 : 0;
    }
}
