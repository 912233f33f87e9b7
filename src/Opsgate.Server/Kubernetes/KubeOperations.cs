using System.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;
using Opsgate.Server.Observability;

namespace Opsgate.Server.Kubernetes;

/// <summary>
/// The one path every Kubernetes operation takes: names validated, cluster looked up, namespace checked
/// against the cluster's allowlist and the caller's, the call made within the cluster timeout, Kubernetes
/// errors turned into answers that carry the API server's message, then metrics recorded. The audit entry
/// (which also makes the cluster's latest execution) is written by the endpoint's audit filter from what is set here.
/// </summary>
internal sealed class KubeOperations(ClusterRegistry registry, OpsgateMetrics metrics)
{
    public async Task<Results<Ok<T>, ProblemHttpResult>> RunAsync<T>(
        HttpContext http, string clusterName, string ns, string? name, string action, bool dryRun,
        Func<KubeClient, CancellationToken, Task<T>> operation)
    {
        var audit = http.Audit();
        audit.Namespace = ns.Length <= 63 ? ns : ns[..63];
        audit.ResourceName = name is null ? null : name.Length <= 253 ? name : name[..253];
        audit.DryRun = dryRun;
        audit.Cluster = clusterName.Length <= 63 ? clusterName : clusterName[..63];

        if (!Validate.IsDnsLabel(clusterName))
            return Problems.Invalid("cluster", Validate.DnsLabelRule);
        if (!Validate.IsDnsLabel(ns))
            return Problems.Invalid("namespace", Validate.DnsLabelRule);
        if (name is not null && !Validate.IsDnsSubdomain(name))
            return Problems.Invalid("name", Validate.DnsSubdomainRule);
        if (await registry.FindAsync(clusterName, http.RequestAborted) is not { } cluster)
            return Problems.NotFound($"cluster '{clusterName}' is not registered");
        if (!cluster.Allows(ns))
            return Forbidden($"namespace '{ns}' is not in the allowlist of cluster '{clusterName}' ({string.Join(", ", cluster.AllowedNamespaces)})");
        var principal = http.Principal()!;
        if (!principal.MayUseNamespace(ns))
            return Forbidden($"namespace '{ns}' is not in {principal.Name}'s namespace allowlist ({string.Join(", ", principal.Namespaces!)})");

        Results<Ok<T>, ProblemHttpResult> result;
        try
        {
            var client = await registry.ClientAsync(cluster, http.RequestAborted);
            var called = Stopwatch.GetTimestamp();
            try
            {
                result = TypedResults.Ok(await operation(client, http.RequestAborted));
            }
            finally
            {
                // Failed, timed-out and abandoned calls too: a slow cluster shows even when it never answers.
                metrics.ClusterCall(clusterName, action, Stopwatch.GetElapsedTime(called));
            }
        }
        catch (KubeApiException e)
        {
            result = e.StatusCode switch
            {
                400 or 404 or 409 or 410 or 422 => TypedResults.Problem(statusCode: e.StatusCode, title: $"Kubernetes: {e.Reason}", detail: e.Message),
                401 or 403 => TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "Cluster refused Opsgate",
                    detail: $"cluster '{clusterName}' refused Opsgate's credentials ({e.StatusCode} {e.Reason}): {e.Message}"),
                _ => TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "Cluster error",
                    detail: $"cluster '{clusterName}' answered {e.StatusCode} {e.Reason}: {e.Message}"),
            };
        }
        catch (KubeUnreachableException e)
        {
            result = TypedResults.Problem(statusCode: e.TimedOut ? StatusCodes.Status504GatewayTimeout : StatusCodes.Status502BadGateway,
                title: e.TimedOut ? "Cluster timeout" : "Cluster unreachable", detail: e.Message);
        }
        catch (KubeconfigException e)
        {
            result = TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "Cluster misconfigured",
                detail: $"cluster '{clusterName}' cannot be used: {e.Message}");
        }

        metrics.Operation(clusterName, action, result.Result is ProblemHttpResult problem ? $"{problem.StatusCode}" : "success");
        return result;
    }

    private static ProblemHttpResult Forbidden(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: detail);
}
