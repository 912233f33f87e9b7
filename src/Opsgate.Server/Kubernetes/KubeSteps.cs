using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Kubernetes;

/// <summary>
/// What the Kubernetes steps share: finding the cluster and telling retryable errors from final ones. The namespace
/// allowlists (the cluster's and the job's principals') are enforced by the job runner before every step (<see cref="JobScope"/>).
/// </summary>
internal sealed class KubeStepSupport(ClusterRegistry registry)
{
    public const string ClusterDescription = "registered cluster name";
    public const string NamespaceDescription = "namespace";

    public async Task<KubeClient> ClientAsync(string name, CancellationToken ct)
    {
        var cluster = await registry.FindAsync(name, ct) ?? throw new StepFailedException($"cluster '{name}' is not registered");
        try
        {
            return await registry.ClientAsync(cluster, ct);
        }
        catch (KubeconfigException e)
        {
            throw new StepFailedException($"cluster '{name}' cannot be used: {e.Message}");
        }
    }

    /// <summary>Runs a call; a Kubernetes 4xx (other than 409 and 429) will not get better by retrying, so it fails the step for good.</summary>
    public static async Task<T> CallAsync<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (KubeApiException e) when (e.StatusCode is >= 400 and < 500 and not 409 and not 429)
        {
            throw new StepFailedException($"Kubernetes {e.StatusCode} {e.Reason}: {e.Message}", e);
        }
    }

    public static KubeResource Resource(string kind) => kind switch
    {
        "deployment" => KubeResource.Deployments,
        "statefulset" => KubeResource.StatefulSets,
        "pod" => KubeResource.Pods,
        "persistentvolumeclaim" => KubeResource.PersistentVolumeClaims,
        "secret" => KubeResource.Secrets,
        "serviceaccount" => KubeResource.ServiceAccounts,
        "role" => KubeResource.Roles,
        "rolebinding" => KubeResource.RoleBindings,
        _ => throw new StepFailedException($"kind '{kind}' is not supported here (deployment, statefulset, pod, persistentvolumeclaim, secret, serviceaccount, role, rolebinding)"),
    };
}

/// <summary><c>k8s.scale</c>: sets replicas of a deployment or statefulset through the scale subresource (idempotent).</summary>
internal sealed class KubeScaleStep(KubeStepSupport kube) : StepExecutor<KubeScaleStep.With>
{
    internal sealed record With(
        [ClusterTarget, Description(KubeStepSupport.ClusterDescription)] string Cluster,
        [NamespaceTarget, Description(KubeStepSupport.NamespaceDescription)] string Namespace,
        [Description("deployment or statefulset")] string Kind,
        [Description("object name")] string Name,
        [Description("desired replicas")] int Replicas);

    public override string Kind => "k8s.scale";
    public override string Description => "Scale a deployment or statefulset.";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken ct)
    {
        var (ns, kind, name, replicas) = (with.Namespace, with.Kind, with.Name, with.Replicas);
        if (kind is not ("deployment" or "statefulset"))
            throw new StepFailedException($"kind must be deployment or statefulset, not '{kind}'");
        var client = await kube.ClientAsync(with.Cluster, ct);
        await KubeStepSupport.CallAsync(() => client.ScaleAsync(KubeStepSupport.Resource(kind), ns, name, replicas, context.DryRun, ct));
        var what = $"{kind} {ns}/{name} to {replicas} replicas";
        return new StepOutcome(context.DryRun ? $"would scale {what} (server-side dry run passed)" : $"scaled {what}",
            new JsonObject { ["replicas"] = replicas });
    }
}

/// <summary><c>k8s.delete</c>: deletes an object; an object already gone counts as deleted, so a re-run converges.</summary>
internal sealed class KubeDeleteStep(KubeStepSupport kube) : StepExecutor<KubeDeleteStep.With>
{
    internal sealed record With(
        [ClusterTarget, Description(KubeStepSupport.ClusterDescription)] string Cluster,
        [NamespaceTarget, Description(KubeStepSupport.NamespaceDescription)] string Namespace,
        [Description("pod, persistentvolumeclaim, deployment, statefulset, secret, serviceaccount, role, rolebinding")] string Kind,
        [Description("object name")] string Name);

    public override string Kind => "k8s.delete";
    public override string Description => "Delete an object (already gone counts as done).";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken ct)
    {
        var (ns, kind, name) = (with.Namespace, with.Kind, with.Name);
        var resource = KubeStepSupport.Resource(kind);
        var client = await kube.ClientAsync(with.Cluster, ct);
        try
        {
            await KubeStepSupport.CallAsync(() => client.DeleteAsync(resource, ns, name, context.DryRun, ct));
        }
        catch (StepFailedException e) when (e.InnerException is KubeApiException { StatusCode: 404 })
        {
            return new StepOutcome($"{kind} {ns}/{name} was already gone");
        }
        return new StepOutcome(context.DryRun ? $"would delete {kind} {ns}/{name} (server-side dry run passed)" : $"deleted {kind} {ns}/{name}");
    }
}

/// <summary><c>k8s.restart</c>: rollout restart of a deployment.</summary>
internal sealed class KubeRestartStep(KubeStepSupport kube, TimeProvider time) : StepExecutor<KubeRestartStep.With>
{
    internal sealed record With(
        [ClusterTarget, Description(KubeStepSupport.ClusterDescription)] string Cluster,
        [NamespaceTarget, Description(KubeStepSupport.NamespaceDescription)] string Namespace,
        [Description("deployment name")] string Name);

    public override string Kind => "k8s.restart";
    public override string Description => "Rollout restart of a deployment.";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken ct)
    {
        var (ns, name) = (with.Namespace, with.Name);
        var client = await kube.ClientAsync(with.Cluster, ct);
        await KubeStepSupport.CallAsync(() => client.RestartAsync(KubeResource.Deployments, ns, name, time.GetUtcNow(), context.DryRun, ct));
        return new StepOutcome(context.DryRun ? $"would restart deployment {ns}/{name}" : $"restarted deployment {ns}/{name}");
    }
}

/// <summary>
/// <c>k8s.wait</c>: waits until the pods selected are gone, or until enough of them are Ready. The selector is
/// given, or read from a deployment's or statefulset's spec.selector. Re-evaluated from scratch on each
/// check, so a resumed wait simply continues.
/// </summary>
internal sealed class KubeWaitStep(KubeStepSupport kube, TimeProvider time) : StepExecutor<KubeWaitStep.With>
{
    internal sealed record With(
        [ClusterTarget, Description(KubeStepSupport.ClusterDescription)] string Cluster,
        [NamespaceTarget, Description(KubeStepSupport.NamespaceDescription)] string Namespace,
        [Description("label selector of the pods")] string? Selector,
        [Description("statefulset or deployment whose selector to use")] string? Kind,
        [Description("name of that object")] string? Name,
        [Description("gone or ready")] string Condition,
        [Description("Ready pods needed (default: the object's replicas)")] int? Count,
        [Description("give up after this (default 5m)")] TimeSpan? Timeout,
        [Description("time between checks (default 500ms)")] TimeSpan? Interval);

    public override string Kind => "k8s.wait";
    public override string Description => "Wait until pods are gone or Ready.";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken ct)
    {
        var ns = with.Namespace;
        var condition = with.Condition;
        if (condition is not ("gone" or "ready"))
            throw new StepFailedException($"condition must be gone or ready, not '{condition}'");
        var timeout = with.Timeout ?? TimeSpan.FromMinutes(5);
        var interval = with.Interval ?? TimeSpan.FromMilliseconds(500);
        var client = await kube.ClientAsync(with.Cluster, ct);

        var selector = with.Selector;
        var count = with.Count;
        if (with.Kind is { } kind)
        {
            var name = with.Name ?? throw new StepFailedException("name is required with kind");
            var owner = await KubeStepSupport.CallAsync(() => client.GetAsync(KubeStepSupport.Resource(kind), ns, name, ct));
            selector ??= Selector(owner) ?? throw new StepFailedException($"{kind} {ns}/{name} has no spec.selector.matchLabels");
            count ??= owner["spec"]?["replicas"]?.GetValue<int>() ?? 1;
        }
        if (selector is null)
            throw new StepFailedException("give a selector, or a kind and name to take the selector from");
        var target = condition == "gone" ? $"pods {selector} in {ns} to be gone" : $"{count ?? 1} pods {selector} in {ns} to be Ready";
        if (context.DryRun)
            return new StepOutcome($"would wait up to {timeout} for {target}");

        var watch = Stopwatch.StartNew();
        string? last = null;
        while (true)
        {
            var pods = await KubeStepSupport.CallAsync(() => client.ListAsync(KubeResource.Pods, ns, ct, selector));
            var items = (pods["items"] as JsonArray ?? []).OfType<JsonObject>().ToList();
            var ready = items.Count(p => p["metadata"]?["deletionTimestamp"] is null && IsReady(p));
            var (done, state) = condition == "gone"
                ? (items.Count == 0, $"{items.Count} pods left")
                : (ready >= (count ?? 1), $"{ready} of {count ?? 1} pods Ready");
            if (done)
                return new StepOutcome($"{target}: done ({state}) after {watch.Elapsed.TotalSeconds:0.0} s", new JsonObject { ["pods"] = items.Count, ["ready"] = ready });
            if (state != last)
            {
                await context.ProgressAsync($"waiting for {target}: {state}");
                last = state;
            }
            if (watch.Elapsed >= timeout)
                throw new StepFailedException($"timed out after {timeout} waiting for {target} ({state})");
            await Task.Delay(interval, time, ct);
        }
    }

    private static string? Selector(JsonObject owner) =>
        owner["spec"]?["selector"]?["matchLabels"] is JsonObject labels && labels.Count > 0
            ? string.Join(',', labels.Select(l => $"{l.Key}={l.Value}"))
            : null;

    private static bool IsReady(JsonObject pod) =>
        (pod["status"]?["conditions"] as JsonArray ?? []).OfType<JsonObject>()
            .Any(c => c["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True");
}
