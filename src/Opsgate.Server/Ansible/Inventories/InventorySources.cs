using System.Text.Json.Nodes;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>
/// An inventory source that cannot be read; <see cref="Status"/> is 400 for the request's fault (path, ansible's
/// refusal) and 502 when git could not fetch the project.
/// </summary>
internal sealed class InventorySourceException(string field, string message, int status = StatusCodes.Status400BadRequest) : Exception(message)
{
    public string Field { get; } = field;
    public int Status { get; } = status;
}

/// <summary>
/// Inventories sourced from a project, as AWX's "sourced from a project": the project is fetched, its ref resolved
/// to a commit and checked out; <c>path</c> in the checkout (an executable inventory script, a YAML/INI inventory,
/// a <c>constructed</c> config, or a directory of them) is expanded by <c>ansible-inventory</c> with
/// <see cref="InventoryExpander.SourcePlugins"/>, in the checkout, with the scrubbed environment. The expansion is
/// written back as a YAML inventory, which is what runs read, so a sourced version is used exactly like a YAML one.
/// </summary>
internal sealed class InventorySources(ProjectStore projects, ProjectCache cache, LocalRepositories local, InventoryExpander expander)
{
    public const int MaxPathLength = 1024;

    /// <summary>Reads <paramref name="path"/> of <paramref name="project"/> at the commit its ref resolves to now (fetched first).</summary>
    public async Task<SourcedInventory> ReadAsync(ProjectInfo project, string path, CancellationToken ct)
    {
        if (path.Length is 0 or > MaxPathLength || path.Any(char.IsControl))
            throw new InventorySourceException("source.path", $"must be a path in the project's checkout, 1-{MaxPathLength} characters");
        // The rule a project is made under, checked again: the project may predate the setting.
        if (local.Refusal(project.GitRepo) is { } notAllowed)
            throw new InventorySourceException("source.project", $"project '{project.Name}': {notAllowed}");
        string commit, checkout;
        CheckoutLease lease;
        try
        {
            commit = await cache.SyncAsync(project, ct);
            await projects.RecordSyncAsync(project.Id, commit, projects.Now(), ct);
            // No job pins this commit: the lease keeps pruning off it while ansible-inventory reads it.
            lease = await cache.LeaseAsync(project, commit, ct);
            checkout = ProjectPaths.RealPath(lease.Path);
        }
        catch (GitException e)
        {
            throw new InventorySourceException("source.project", $"project '{project.Name}': git fetch failed: {e.Message}", StatusCodes.Status502BadGateway);
        }
        using (lease)
            return await ReadCheckoutAsync(project, path, commit, checkout, ct);
    }

    private async Task<SourcedInventory> ReadCheckoutAsync(ProjectInfo project, string path, string commit, string checkout, CancellationToken ct)
    {
        switch (ProjectPaths.Resolve(checkout, path, directoryAllowed: true, out var full))
        {
            case PathProblem.Outside:
                throw new InventorySourceException("source.path", $"'{path}' is outside project '{project.Name}': give a relative path without '..' that does not lead out of the checkout through a link");
            case PathProblem.Missing:
                throw new InventorySourceException("source.path", $"'{path}' does not exist in project '{project.Name}' at commit {commit}");
        }
        ExpandedInventory source;
        try
        {
            source = await expander.ExpandAsync(checkout, full, InventoryExpander.SourcePlugins, path, ct);
        }
        catch (InventoryException e)
        {
            throw new InventorySourceException("source", $"ansible-inventory cannot read '{path}' of project '{project.Name}' at commit {commit}: {e.Message}");
        }

        // Runs read the YAML, /hosts and shards the expansion: they must be the same inventory. ansible reads the YAML
        // back, and what it finds must equal what the source gave (it would not for a host name the yaml plugin takes
        // for a range or a port, such as "db[1:2]" or "10.0.0.1:2222").
        var yaml = InventoryYaml.FromExpansion(source.List);
        ExpandedInventory expanded;
        try
        {
            expanded = await expander.ExpandAsync(yaml, ct);
        }
        catch (InventoryException e)
        {
            throw new InventorySourceException("source", $"'{path}' of project '{project.Name}' cannot be stored as a YAML inventory: {e.Message}");
        }
        if (!JsonNode.DeepEquals(Canonical(source.List), Canonical(expanded.List)))
        {
            var differ = source.Hosts.Except(expanded.Hosts, StringComparer.Ordinal).Take(5).ToList();
            throw new InventorySourceException("source", $"'{path}' of project '{project.Name}' cannot be stored as a YAML inventory without changing it"
                + (differ.Count > 0 ? $": ansible reads host names {string.Join(", ", differ)} differently in YAML (ranges, ports)" : ""));
        }
        return new SourcedInventory(yaml, expanded, new InventorySourceInfo(project.Id, project.Name, path, commit));
    }

    /// <summary>The expansion with every group's hosts and children sorted: the order ansible lists them in may differ between two readings.</summary>
    private static JsonObject Canonical(JsonObject list)
    {
        var copy = list.DeepClone().AsObject();
        foreach (var (_, node) in copy)
        {
            if (node is not JsonObject group)
                continue;
            foreach (var key in new[] { "hosts", "children" })
            {
                if (group[key] is JsonArray items)
                    group[key] = new JsonArray([.. items.Select(i => i?.GetValue<string>()).Order(StringComparer.Ordinal).Select(i => (JsonNode?)i)]);
            }
        }
        return copy;
    }
}
