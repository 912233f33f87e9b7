using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Kubernetes;

internal sealed record RegisterClusterRequest(string Name, string Kubeconfig, IReadOnlyList<string> AllowedNamespaces, string? Context = null);

internal sealed record LatestExecution(string Action, string? Namespace, string? ResourceName, string Status, string? Actor, bool DryRun, DateTime At);

internal sealed record ClusterResponse(
    string Name, string Server, string? Context, IReadOnlyList<string> AllowedNamespaces, string Source, DateTime? CreatedAt, string? CreatedBy,
    string Status, string? ServerVersion, DateTime? LastChecked, string? Message, LatestExecution? LatestExecution)
{
    public static ClusterResponse From(ClusterInfo c, ClusterHealth h, AuditEntry? op) => new(
        c.Name, c.Server, c.Context, c.AllowedNamespaces, c.Source, c.CreatedAt, c.CreatedBy, h.Status, h.ServerVersion, h.LastChecked, h.Message,
        op is null ? null : new LatestExecution(op.Action, op.Namespace, op.ResourceName, op.Status, op.Actor, op.DryRun, op.Ts));
}

internal sealed record ClusterList(IReadOnlyList<ClusterResponse> Items);

internal sealed record ClusterStatusList(IReadOnlyList<ClusterResponse> Clusters);

/// <summary>/api/v1/clusters: the cluster registry. Kubeconfigs go into the secret store and never come back out.</summary>
internal static class ClustersApi
{
    public static void MapClustersApi(this WebApplication app)
    {
        var group = app.MapGroup("/api/v1/clusters").WithTags("Clusters");
        group.MapPost("/", Register).RequireRole(Role.Admin, AccessScope.Global).Audited("cluster.register", "cluster")
            .WithSummary("Register a cluster: name, base64 kubeconfig, optional context, allowed namespaces.");
        group.MapGet("/", List).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Registered clusters with their last known status (the latest execution among those in the caller's namespaces).");
        group.MapGet("/status", Status).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Every cluster's status and latest execution.");
        group.MapGet("/{name}/status", OneStatus).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Probe one cluster now.");
        group.MapDelete("/{name}", Remove).RequireRole(Role.Admin, AccessScope.Global).Audited("cluster.remove", "cluster")
            .WithSummary("Remove a cluster registered through the API, and its stored kubeconfig.");
    }

    private static async Task<Results<Created<ClusterResponse>, ProblemHttpResult>> Register(
        RegisterClusterRequest request, HttpContext context, ClusterRegistry registry, ClusterMonitor monitor)
    {
        context.SetAuditBody(request); // kubeconfig is redacted by name
        context.Audit().ResourceName = request.Name.Length <= 63 ? request.Name : request.Name[..63];
        context.Audit().Cluster = context.Audit().ResourceName;
        if (!Validate.IsDnsLabel(request.Name))
            return Problems.Invalid("name", Validate.DnsLabelRule);
        if (request.AllowedNamespaces.Count == 0)
            return Problems.Invalid("allowed_namespaces", "must list at least one namespace (or \"*\" for all)");
        for (var i = 0; i < request.AllowedNamespaces.Count; i++)
        {
            if (request.AllowedNamespaces[i] != "*" && !Validate.IsDnsLabel(request.AllowedNamespaces[i]))
                return Problems.Invalid($"allowed_namespaces[{i}]", Validate.DnsLabelRule);
        }
        if (request.Context is { } ctx && (ctx.Length is 0 or > 253))
            return Problems.Invalid("context", "must be 1-253 characters");
        string yaml;
        try
        {
            yaml = Encoding.UTF8.GetString(Convert.FromBase64String(request.Kubeconfig));
        }
        catch (FormatException)
        {
            return Problems.Invalid("kubeconfig", "must be the kubeconfig file encoded in base64");
        }
        try
        {
            var cluster = await registry.RegisterAsync(request.Name, yaml, request.Context, request.AllowedNamespaces, context.Principal()!.Name, context.RequestAborted);
            var health = await monitor.ProbeAsync(cluster, context.RequestAborted);
            return TypedResults.Created($"/api/v1/clusters/{cluster.Name}", ClusterResponse.From(cluster, health, null));
        }
        catch (KubeconfigException e)
        {
            return Problems.Invalid("kubeconfig", e.Message);
        }
        catch (ClusterConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }

    private static async Task<Ok<ClusterList>> List(HttpContext http, ClusterRegistry registry, ClusterMonitor monitor, AuditLog audit, CancellationToken ct)
    {
        var latest = await audit.LatestPerClusterAsync("k8s.", http.Principal()!.Namespaces, ct);
        var clusters = await registry.ListAsync(ct);
        return TypedResults.Ok(new ClusterList(clusters.Select(c => ClusterResponse.From(c, monitor.Health(c.Name), latest.GetValueOrDefault(c.Name))).ToList()));
    }

    private static async Task<Ok<ClusterStatusList>> Status(HttpContext http, ClusterRegistry registry, ClusterMonitor monitor, AuditLog audit, CancellationToken ct) =>
        TypedResults.Ok(new ClusterStatusList(await StatusesAsync(registry, monitor, audit, http.Principal()!.Namespaces, ct)));

    /// <summary>Every cluster with its status (probed now if never probed) and latest execution within <paramref name="namespaces"/>; the console's clusters page shows the same.</summary>
    internal static async Task<IReadOnlyList<ClusterResponse>> StatusesAsync(
        ClusterRegistry registry, ClusterMonitor monitor, AuditLog audit, IReadOnlyList<string>? namespaces, CancellationToken ct)
    {
        var latest = await audit.LatestPerClusterAsync("k8s.", namespaces, ct);
        var clusters = await registry.ListAsync(ct);
        return await Task.WhenAll(clusters.Select(async c =>
        {
            var health = monitor.Health(c.Name);
            if (health.LastChecked is null)
                health = await monitor.ProbeAsync(c, ct);
            return ClusterResponse.From(c, health, latest.GetValueOrDefault(c.Name));
        }));
    }

    private static async Task<Results<Ok<ClusterResponse>, ProblemHttpResult>> OneStatus(
        string name, HttpContext http, ClusterRegistry registry, ClusterMonitor monitor, AuditLog audit, CancellationToken ct)
    {
        if (!Validate.IsDnsLabel(name))
            return Problems.Invalid("name", Validate.DnsLabelRule);
        if (await registry.FindAsync(name, ct) is not { } cluster)
            return Problems.NotFound($"cluster '{name}' is not registered");
        var health = await monitor.ProbeAsync(cluster, ct);
        var latest = await audit.LatestPerClusterAsync("k8s.", http.Principal()!.Namespaces, ct);
        return TypedResults.Ok(ClusterResponse.From(cluster, health, latest.GetValueOrDefault(name)));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Remove(string name, HttpContext context, ClusterRegistry registry, ClusterMonitor monitor)
    {
        context.Audit().ResourceName = name.Length <= 63 ? name : name[..63];
        context.Audit().Cluster = context.Audit().ResourceName;
        if (!Validate.IsDnsLabel(name))
            return Problems.Invalid("name", Validate.DnsLabelRule);
        try
        {
            if (!await registry.RemoveAsync(name, context.RequestAborted))
                return Problems.NotFound($"cluster '{name}' is not registered");
        }
        catch (ClusterConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
        monitor.Forget(name);
        return TypedResults.NoContent();
    }
}
