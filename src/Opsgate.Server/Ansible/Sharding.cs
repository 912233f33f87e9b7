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

    /// <summary>
    /// Why the shards' results may differ from one run's, or null. ansible ends a playbook after a play in which every
    /// host failed; a shard decides that over its own hosts only. So a shard that stopped after play S (all its hosts
    /// in S failed) matches one run only if every other shard stopped there too: none had a host in S that did not
    /// fail, and none ran a task in a later play. Shards without play figures (no stats) are judged incomplete
    /// elsewhere.
    /// </summary>
    public static string? StoppedApart(IReadOnlyList<ShardPlays> shards)
    {
        ShardPlays? first = null;
        foreach (var shard in shards)
        {
            if (shard.Total is { } total && shard.Plays.Count < total && shard.Plays is [.., { Hosts: > 0 } last] && last.Failed == last.Hosts
                && (first is null || shard.Plays.Count < first.Plays.Count))
                first = shard;
        }
        if (first is null)
            return null;
        var at = first.Plays.Count - 1;
        var play = first.Plays[at].Name;
        foreach (var other in shards)
        {
            var why = other.Plays.Skip(at + 1).Any(p => p.Hosts > 0) ? "went on with later plays"
                : other.Plays.Count > at && other.Plays[at] is { Hosts: > 0 } p && p.Failed < p.Hosts ? "had hosts in that play that did not fail"
                : null;
            if (why is not null)
                return $"shard {first.Shard} stopped after play '{play}' because every one of its hosts in that play failed, while shard {other.Shard} {why}; "
                       + "one ansible-playbook run stops only when every host of a play has failed, so these results differ from one run's: run this playbook with shards: 1";
        }
        return null;
    }
}

/// <summary>One play as a shard ran it: how many of its hosts got a result in it, how many failed in it.</summary>
internal sealed record PlayCount(string Name, int Hosts, int Failed);

/// <summary>The plays a shard started, of how many the playbook has (null: unknown).</summary>
internal sealed record ShardPlays(int Shard, IReadOnlyList<PlayCount> Plays, int? Total);
