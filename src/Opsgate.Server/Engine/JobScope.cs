using System.Text.Json;
using System.Text.Json.Nodes;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Engine;

/// <summary>A cluster and namespace a job acts on.</summary>
internal readonly record struct JobTarget(string Cluster, string Namespace);

/// <summary>Someone whose namespace allowlist a job's targets must lie in: the submitter, and the approver of a job that needed one.</summary>
/// <param name="Namespaces">Null: no allowlist.</param>
internal sealed record ScopeHolder(string Who, IReadOnlyList<string>? Namespaces)
{
    public bool Allows(string ns) => Namespaces is null || Namespaces.Contains(ns, StringComparer.Ordinal);

    public static string? ToJson(IReadOnlyList<string>? namespaces) => namespaces is null ? null : JsonSerializer.Serialize(namespaces);

    public static IReadOnlyList<string>? FromJson(string? json) => json is null ? null : JsonSerializer.Deserialize<List<string>>(json);
}

/// <summary>
/// Where a job acts, and whether it may act there. Step kinds declare which inputs name a cluster and a namespace
/// (<see cref="IStepExecutor.Target"/>). A target known at submit is checked then and stored with the job, where it
/// decides who may see and touch the job; every target is checked again before each run of its step, so one a step
/// only learns from an earlier step's output is held to the same allowlists: the cluster's, the submitter's and,
/// for a job that needed approval, the approver's.
/// </summary>
internal sealed class JobScope(IClusterAllowlists clusters, IEnumerable<IStepExecutor> executors)
{
    private readonly Dictionary<string, IStepExecutor> _executors = executors.ToDictionary(e => e.Kind, StringComparer.Ordinal);

    /// <summary>The targets of the steps whose cluster and namespace inputs do not depend on an earlier step's outputs, in step order.</summary>
    public IReadOnlyList<(RunbookStep Step, JobTarget Target)> KnownAtSubmit(Runbook runbook, JsonObject parameters)
    {
        var known = new List<(RunbookStep, JobTarget)>();
        foreach (var step in runbook.Steps)
        {
            if (_executors[step.Kind].Target is not { } inputs || LearnedAtRunTime(step, inputs))
                continue;
            var rendered = Templates.RenderObject(new JsonObject
            {
                [inputs.ClusterInput] = step.With[inputs.ClusterInput]?.DeepClone(),
                [inputs.NamespaceInput] = step.With[inputs.NamespaceInput]?.DeepClone(),
            }, parameters, new Dictionary<string, JsonObject>());
            if (Of(inputs, rendered) is { } target)
                known.Add((step, target));
        }
        return known;
    }

    /// <summary>True when the step's cluster or namespace comes from an earlier step's outputs.</summary>
    public static bool LearnedAtRunTime(RunbookStep step, StepTarget inputs) =>
        Templates.UsesStepOutputs(step.With[inputs.ClusterInput]) || Templates.UsesStepOutputs(step.With[inputs.NamespaceInput]);

    /// <summary>The target named by a step's rendered inputs; null when the kind has none or an input is missing or not text.</summary>
    public static JobTarget? Of(StepTarget? inputs, JsonObject rendered) =>
        inputs is not null && Text(rendered[inputs.ClusterInput]) is { } cluster && Text(rendered[inputs.NamespaceInput]) is { } ns
            ? new JobTarget(cluster, ns)
            : null;

    /// <summary>Null when a step may act on <paramref name="target"/>; otherwise why not, naming the namespace and whose allowlist refused it.</summary>
    public async Task<Refusal?> CheckAsync(JobTarget target, IEnumerable<ScopeHolder> holders, CancellationToken ct)
    {
        if (await clusters.AllowsAsync(target.Cluster, target.Namespace, ct) is not { } allowed)
            return new Refusal(RefusalKind.UnknownCluster, $"cluster '{target.Cluster}' is not registered");
        if (!allowed)
            return new Refusal(RefusalKind.Forbidden, $"namespace '{target.Namespace}' is not in the allowlist of cluster '{target.Cluster}'");
        foreach (var holder in holders)
        {
            if (!holder.Allows(target.Namespace))
                return new Refusal(RefusalKind.Forbidden, $"namespace '{target.Namespace}' is not in {holder.Who}'s namespace allowlist");
        }
        return null;
    }

    /// <summary>The principals whose allowlists a running job's targets must lie in.</summary>
    public static IEnumerable<ScopeHolder> Holders(JobRow job)
    {
        yield return new ScopeHolder($"the submitter {job.Actor}", ScopeHolder.FromJson(job.SubmitterNamespaces));
        if (job.ApproverNamespaces is not null)
            yield return new ScopeHolder($"the approver {job.DecidedBy}", ScopeHolder.FromJson(job.ApproverNamespaces));
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

internal enum RefusalKind { UnknownCluster, Forbidden }

internal sealed record Refusal(RefusalKind Kind, string Message);

/// <summary>The clusters jobs may target, as the engine sees them: names and namespace allowlists (the Kubernetes feature keeps them).</summary>
internal interface IClusterAllowlists
{
    /// <summary>Null when no cluster has that name; otherwise whether its allowlist holds the namespace.</summary>
    Task<bool?> AllowsAsync(string cluster, string ns, CancellationToken ct);
}
