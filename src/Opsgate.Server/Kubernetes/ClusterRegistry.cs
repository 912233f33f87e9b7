using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Kubernetes;

/// <summary>A registered cluster. The kubeconfig is not here: it stays in the secret store (or the operator's file).</summary>
internal sealed record ClusterInfo(
    string Name, string? Context, IReadOnlyList<string> AllowedNamespaces, string Server, string Source, DateTime? CreatedAt, string? CreatedBy)
{
    public bool Allows(string ns) => AllowedNamespaces.Contains(ns, StringComparer.Ordinal) || AllowedNamespaces.Contains("*", StringComparer.Ordinal);
}

/// <summary>A cluster declared in configuration: <c>Clusters:&lt;name&gt;:Kubeconfig</c> (a path), <c>:Context</c>, <c>:AllowedNamespaces</c> (comma list).</summary>
internal sealed class ClusterConfigEntry
{
    public string? Kubeconfig { get; set; }
    public string? Context { get; set; }
    public string? AllowedNamespaces { get; set; }
}

internal sealed class ClusterConflictException(string message) : Exception(message);

/// <summary>
/// Clusters from configuration (read-only, trusted: exec plugins and file paths allowed) and from the API
/// (kubeconfig in the secret store, untrusted unless Kubernetes:TrustUploadedKubeconfigs). Keeps one
/// <see cref="KubeClient"/> per cluster so connections are reused across operations.
/// </summary>
internal sealed class ClusterRegistry(
    Database database, ISecretStore secrets, IOptions<KubeOptions> kube, IConfiguration configuration, TimeProvider time) : IClusterAllowlists, IDisposable
{
    private static readonly TimeSpan ListCacheTtl = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, KubeClient> _clients = new(StringComparer.Ordinal);
    private (IReadOnlyList<ClusterInfo> Clusters, long At)? _cache;

    public static string SecretName(string cluster) => $"cluster/{cluster}/kubeconfig";

    public async Task<IReadOnlyList<ClusterInfo>> ListAsync(CancellationToken ct)
    {
        if (_cache is { } cached && time.GetElapsedTime(cached.At) < ListCacheTtl)
            return cached.Clusters;
        var list = new List<ClusterInfo>(Configured().Select(c => c.Info));
        await using var connection = await database.OpenAsync(ct);
        foreach (var row in await connection.QueryAsync<ClusterRow>("SELECT name, context, allowed_namespaces, server, created_at, created_by FROM clusters ORDER BY name"))
        {
            if (list.All(c => c.Name != row.Name))
                list.Add(new ClusterInfo(row.Name, row.Context, JsonSerializer.Deserialize<List<string>>(row.AllowedNamespaces) ?? [], row.Server, "api", row.CreatedAt.AsUtc(), row.CreatedBy));
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        _cache = (list, time.GetTimestamp());
        return list;
    }

    public async Task<ClusterInfo?> FindAsync(string name, CancellationToken ct) =>
        (await ListAsync(ct)).FirstOrDefault(c => c.Name == name);

    async Task<bool?> IClusterAllowlists.AllowsAsync(string cluster, string ns, CancellationToken ct) =>
        await FindAsync(cluster, ct) is { } info ? info.Allows(ns) : null;

    /// <summary>Checks the kubeconfig can be used (parses, the context resolves) before storing anything.</summary>
    public async Task<ClusterInfo> RegisterAsync(string name, string kubeconfigYaml, string? context, IReadOnlyList<string> allowedNamespaces, string actor, CancellationToken ct)
    {
        var target = Kubeconfig.Parse(kubeconfigYaml).Resolve(context, trusted: kube.Value.TrustUploadedKubeconfigs);
        if (await FindAsync(name, ct) is not null)
            throw new ClusterConflictException($"cluster '{name}' already exists");
        var now = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        // The row first: a name taken a moment ago by someone else must not get its kubeconfig overwritten.
        await using (var write = await database.WriteAsync(ct))
        {
            var inserted = await write.Connection.ExecuteAsync(
                """
                INSERT INTO clusters (name, context, allowed_namespaces, server, created_at, created_by)
                VALUES (@name, @context, @allowed, @server, @now, @actor)
                ON CONFLICT (name) DO NOTHING
                """,
                new { name, context, allowed = JsonSerializer.Serialize(allowedNamespaces), server = target.Server.ToString(), now, actor }, write.Transaction);
            if (inserted == 0)
                throw new ClusterConflictException($"cluster '{name}' already exists");
            await write.CommitAsync(ct);
        }
        try
        {
            await secrets.PutAsync(SecretName(name), Encoding.UTF8.GetBytes(kubeconfigYaml), ct);
        }
        catch
        {
            await using var undo = await database.WriteAsync(CancellationToken.None);
            await undo.Connection.ExecuteAsync("DELETE FROM clusters WHERE name = @name", new { name }, undo.Transaction);
            await undo.CommitAsync(CancellationToken.None);
            throw;
        }
        _cache = null;
        return new ClusterInfo(name, context, allowedNamespaces, target.Server.ToString(), "api", now, actor);
    }

    /// <summary>False when there is no such API-registered cluster; configured clusters cannot be removed through the API.</summary>
    public async Task<bool> RemoveAsync(string name, CancellationToken ct)
    {
        if (Configured().Any(c => c.Info.Name == name))
            throw new ClusterConflictException($"cluster '{name}' is declared in configuration (Clusters:{name}); remove it there");
        int removed;
        await using (var write = await database.WriteAsync(ct))
        {
            removed = await write.Connection.ExecuteAsync("DELETE FROM clusters WHERE name = @name", new { name }, write.Transaction);
            await write.CommitAsync(ct);
        }
        await secrets.DeleteAsync(SecretName(name), ct);
        _cache = null;
        if (_clients.TryRemove(name, out var client))
            client.Dispose();
        return removed > 0;
    }

    public async Task<KubeClient> ClientAsync(ClusterInfo cluster, CancellationToken ct)
    {
        if (_clients.TryGetValue(cluster.Name, out var existing))
            return existing;
        KubeTarget target;
        if (cluster.Source == "config")
        {
            target = Resolve(Configured().First(c => c.Info.Name == cluster.Name).Entry);
        }
        else
        {
            var yaml = await secrets.GetAsync(SecretName(cluster.Name), ct)
                ?? throw new KubeconfigException($"the kubeconfig of cluster '{cluster.Name}' is missing from the secret store");
            target = Kubeconfig.Parse(Encoding.UTF8.GetString(yaml)).Resolve(cluster.Context, trusted: kube.Value.TrustUploadedKubeconfigs);
        }
        var client = new KubeClient(cluster.Name, target, kube.Value.RequestTimeout, time);
        if (_clients.TryAdd(cluster.Name, client))
            return client;
        client.Dispose();
        return _clients[cluster.Name];
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values)
            client.Dispose();
    }

    /// <summary>Start-up check of clusters declared in configuration: a bad one stops start-up naming its key.</summary>
    public void ValidateConfigured()
    {
        foreach (var (info, entry) in Configured())
        {
            var key = $"Clusters:{info.Name}";
            if (!Hosting.Validate.IsDnsLabel(info.Name))
                throw new Hosting.StartupException($"configuration error: {key}: the cluster name {Hosting.Validate.DnsLabelRule}");
            if (string.IsNullOrWhiteSpace(entry.Kubeconfig))
                throw new Hosting.StartupException($"configuration error: {key}:Kubeconfig is required (a path to a kubeconfig file)");
            if (!File.Exists(entry.Kubeconfig))
                throw new Hosting.StartupException($"configuration error: {key}:Kubeconfig: file '{Path.GetFullPath(entry.Kubeconfig)}' does not exist");
            if (info.AllowedNamespaces.Count == 0 || info.AllowedNamespaces.Any(ns => ns != "*" && !Hosting.Validate.IsDnsLabel(ns)))
                throw new Hosting.StartupException($"configuration error: {key}:AllowedNamespaces must be a comma-separated list of namespaces (or *)");
            try
            {
                Resolve(entry);
            }
            catch (KubeconfigException e)
            {
                throw new Hosting.StartupException($"configuration error: {key}:Kubeconfig: {e.Message}");
            }
        }
    }

    private static KubeTarget Resolve(ClusterConfigEntry entry)
    {
        var path = Path.GetFullPath(entry.Kubeconfig!);
        return Kubeconfig.Parse(File.ReadAllText(path)).Resolve(entry.Context, trusted: true, Path.GetDirectoryName(path));
    }

    private IEnumerable<(ClusterInfo Info, ClusterConfigEntry Entry)> Configured()
    {
        foreach (var section in configuration.GetSection("Clusters").GetChildren())
        {
            var entry = section.Get<ClusterConfigEntry>() ?? new ClusterConfigEntry();
            var allowed = (entry.AllowedNamespaces ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            string server;
            try
            {
                server = Resolve(entry).Server.ToString();
            }
            catch (Exception e) when (e is KubeconfigException or IOException or ArgumentException)
            {
                server = "";
            }
            yield return (new ClusterInfo(section.Key, entry.Context, allowed, server, "config", null, null), entry);
        }
    }

    private sealed class ClusterRow
    {
        public string Name { get; set; } = "";
        public string? Context { get; set; }
        public string AllowedNamespaces { get; set; } = "[]";
        public string Server { get; set; } = "";
        public DateTime CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";
    }
}
