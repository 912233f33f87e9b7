using Opsgate.Server.Ansible.Inventories;

namespace Opsgate.Server.Ansible;

/// <summary>One version of a stored inventory as the console lists it (the inventories API's <c>InventoryResponse</c>).</summary>
internal sealed record InventorySummary(
    long Id, string Name, string? Env, string Version, long HostCount, DateTime CreatedAt, string CreatedBy, string? SourceProject, string? SourcePath, string? SourceCommit)
{
    public static InventorySummary From(InventoryVersion v) =>
        new(v.Id, v.Name, v.Env, v.Version, v.HostCount, v.CreatedAt, v.CreatedBy, v.Source?.Project, v.Source?.Path, v.Source?.Commit);
}

/// <summary>A page of an inventory version's hosts as ansible expands them, each with its groups (the API's <c>/hosts</c> page).</summary>
internal sealed record InventoryHostsView(InventorySummary Version, long Total, int Offset, IReadOnlyList<KeyValuePair<string, IReadOnlyList<string>>> Hosts);

/// <summary>
/// The inventories API's reads (list, versions, hosts with groups) for the web console, in types of this namespace:
/// the store and its records are the Ansible feature's internals (<c>Ansible.Inventories</c>), which other features
/// do not use directly. Same store calls, same grouping, so the console shows what the API answers.
/// </summary>
internal sealed class InventoryViews(InventoryStore store)
{
    public const string ReferenceRule = InventoryNames.ReferenceRule;
    public const string VersionRule = InventoryNames.VersionRule;

    public static bool IsValidReference(string? text) => InventoryRef.TryParse(text, out _);

    public static bool IsValidVersion(string? version) => InventoryNames.IsValidVersion(version);

    /// <summary>Every inventory at its latest version, by name.</summary>
    public async Task<IReadOnlyList<InventorySummary>> ListAsync(CancellationToken ct) => [.. (await store.ListAsync(ct)).Select(InventorySummary.From)];

    /// <summary>Every version, oldest first; null when there is no such inventory.</summary>
    public async Task<IReadOnlyList<InventorySummary>?> VersionsAsync(string reference, CancellationToken ct) =>
        InventoryRef.TryParse(reference, out var parsed) && await store.VersionsAsync(parsed, ct) is { } versions ? [.. versions.Select(InventorySummary.From)] : null;

    /// <summary>The hosts of <paramref name="version"/> (null: the latest), <paramref name="limit"/> from <paramref name="offset"/>; null when there is none.</summary>
    public async Task<InventoryHostsView?> HostsAsync(string reference, string? version, int offset, int limit, CancellationToken ct)
    {
        if (!InventoryRef.TryParse(reference, out var parsed) || await store.ResolveAsync(parsed, version, ct) is not { } found)
            return null;
        var groups = InventoriesApi.GroupsByHost(found.Expanded.List);
        var page = found.Expanded.Hosts.Skip(offset).Take(limit)
            .Select(h => new KeyValuePair<string, IReadOnlyList<string>>(h, groups.TryGetValue(h, out var g) ? g : [])).ToList();
        return new InventoryHostsView(InventorySummary.From(found.Version), found.Expanded.Hosts.Count, offset, page);
    }
}
