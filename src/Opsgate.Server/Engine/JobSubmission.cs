using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Api;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;
using Opsgate.Server.Clusters;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Http;

namespace Opsgate.Server.Engine;

internal sealed record RunbookDescription(string Name, string? Description, bool RequiresApproval, string ApproversRole, string? Timeout,
    IReadOnlyList<RunbookParameterDescription> Parameters, IReadOnlyList<RunbookStepDescription> Steps, string Source);

internal sealed record RunbookParameterDescription(string Name, string Type, bool Required, JsonNode? Default, IReadOnlyList<string>? Values,
    long? Min, long? Max, string? Pattern, string? Description);

internal sealed record RunbookStepDescription(string Name, string Kind);

/// <summary>
/// Turns a submit request into a queued job: the runbook is found, parameters bound and checked, step inputs
/// checked against their kinds, Kubernetes targets checked against the cluster's and the caller's namespace
/// allowlists — all before anything is stored, so a bad request is a 4xx and never a failed job.
/// </summary>
internal sealed class JobSubmission(RunbookCatalog catalog, IEnumerable<IStepExecutor> executors, JobStore store, ClusterRegistry clusters,
    JobAdmission admission)
{
    private readonly Dictionary<string, IStepExecutor> _executors = executors.ToDictionary(e => e.Kind, StringComparer.Ordinal);

    public async Task<Results<Created<JobView>, ProblemHttpResult>> SubmitAsync(HttpContext http, string type, JsonObject? input, bool dryRun)
    {
        var principal = http.Principal()!;
        var audit = http.Audit();
        audit.DryRun = dryRun;
        if (catalog.Find(type) is not { } runbook)
            return Problems.Invalid("type", $"unknown job type '{Truncate(type)}'; known types: {string.Join(", ", catalog.All.Select(r => r.Name).Order(StringComparer.Ordinal))}");

        JsonObject parameters;
        try
        {
            parameters = ParameterBinder.Bind(runbook, input);
            StepInputValidator.Validate(runbook, parameters, _executors);
        }
        catch (ParameterException e)
        {
            return Problems.Invalid(e.Field, e.Message);
        }
        if (await CheckTargetsAsync(runbook, parameters, principal, http.RequestAborted) is { } refused)
            return refused;
        if (await CheckReferencesAsync(runbook, parameters, http.RequestAborted) is { } dangling)
            return dangling;
        if (await StepUseCheck.CheckAsync(runbook, parameters, _executors, principal, http.RequestAborted) is { } forbidden)
            return forbidden;

        string? concurrencyKey = null;
        if (runbook.Options.ConcurrencyKey is { } keyTemplate)
        {
            // A key that is exactly one parameter renders with that parameter's type ("{{ params.ordinal }}" is a number).
            concurrencyKey = Templates.Render(JsonValue.Create(keyTemplate), parameters, new Dictionary<string, JsonObject>()) switch
            {
                null => null,
                JsonValue value when value.TryGetValue<string>(out var text) => text,
                var other => other.ToJsonString(),
            };
        }

        var now = store.Now();
        var job = new NewJob(
            JobIds.New(new DateTimeOffset(now)), runbook.Name, parameters, dryRun,
            runbook.Options.RequiresApproval ? JobStatus.WaitingApproval : JobStatus.Pending,
            principal.Name, principal.Id, http.Connection.RemoteIpAddress?.ToString(), concurrencyKey,
            runbook.Options.RequiresApproval && runbook.Options.ApprovalTimeout is { } window ? now + window : null,
            runbook.Steps.Select(s => (s.Name, s.Kind)).ToList());
        if (job.Status == JobStatus.Pending)
            await admission.AdmitAsync(http.RequestAborted);
        var (stored, steps) = await store.SubmitAsync(job, http.RequestAborted);
        if (job.Status == JobStatus.Pending)
            admission.Queued();
        audit.JobId = job.Id;
        audit.ResourceName = job.Id;
        return TypedResults.Created($"/api/v1/jobs/{job.Id}", await ViewAsync(stored, steps, http.RequestAborted));
    }

    /// <summary>403 when a Kubernetes step targets a namespace outside the cluster's or the caller's allowlist.</summary>
    private async Task<ProblemHttpResult?> CheckTargetsAsync(Runbook runbook, JsonObject parameters, Principal principal, CancellationToken ct)
    {
        foreach (var step in runbook.Steps.Where(s => s.Kind.StartsWith("k8s.", StringComparison.Ordinal) && !Templates.UsesStepOutputs(s.With)))
        {
            var inputs = Templates.Render(step.With, parameters, new Dictionary<string, JsonObject>())!.AsObject();
            var clusterName = inputs["cluster"]?.GetValue<string>();
            var ns = inputs["namespace"]?.GetValue<string>();
            if (clusterName is null || ns is null)
                continue;
            if (await clusters.FindAsync(clusterName, ct) is not { } cluster)
                return Problems.Invalid("params.cluster", $"cluster '{clusterName}' is not registered");
            if (!cluster.Allows(ns))
                return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: $"namespace '{ns}' is not in the allowlist of cluster '{clusterName}'");
            if (!principal.MayUseNamespace(ns))
                return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: $"namespace '{ns}' is not in {principal.Name}'s namespace allowlist");
        }
        return null;
    }

    /// <summary>400 when a step's input names something that does not exist (see <see cref="IStepExecutor.CheckReferencesAsync"/>).</summary>
    private async Task<ProblemHttpResult?> CheckReferencesAsync(Runbook runbook, JsonObject parameters, CancellationToken ct)
    {
        foreach (var step in runbook.Steps.Where(s => !Templates.UsesStepOutputs(s.With)))
        {
            var inputs = Templates.RenderObject(step.With, parameters, new Dictionary<string, JsonObject>());
            if (await _executors[step.Kind].CheckReferencesAsync(inputs, ct) is { } problem)
                return Problems.Invalid($"steps.{step.Name}.{problem.Input}", problem.Message);
        }
        return null;
    }

    /// <summary>Approvers need the runbook's approvers role and must not be the one who asked for the job.</summary>
    public async Task<ProblemHttpResult?> CheckApproverAsync(HttpContext http, string id)
    {
        if (!JobIds.IsValid(id) || await store.GetAsync(id, http.RequestAborted) is not { } found)
            return null; // the command itself answers 400/404
        var principal = http.Principal()!;
        var needed = catalog.Find(found.Job.Type)?.Options.ApproversRole ?? Role.Approver;
        if (principal.Role is not { } role || role < needed)
            return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: $"deciding on {found.Job.Type} jobs requires role {needed.Name()} or higher");
        if (principal.Id == found.Job.PrincipalId)
            return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: "a job cannot be approved or rejected by the one who submitted it");
        return null;
    }

    public async Task<JobView> ViewAsync(JobRow job, IReadOnlyList<StepRow> steps, CancellationToken ct) => new(
        job.Id, job.Type, job.Status, JobsApi.ParseParams(job.Params), job.DryRun, job.Actor, job.SourceIp, job.CreatedAt, job.StartedAt, job.FinishedAt,
        job.Attempt, await PendingReasonAsync(job, ct), job.Error, job.DecidedBy, job.DecisionComment, job.ApprovalExpiresAt, job.CancelRequested,
        steps.Select(s => new StepView(s.Name, s.StepOrder, s.Kind, s.Status, s.Detail, s.Attempts, s.StartedAt, s.FinishedAt, JobsApi.ParseOutput(s.Output))).ToList())
    {
        ParentId = job.ParentId,
        ShardIndex = job.ShardIndex,
        ShardHosts = job.ShardHosts,
    };

    /// <summary>Why a job is not running, worked out from the current state rather than stored (so it is never stale).</summary>
    private async Task<string?> PendingReasonAsync(JobRow job, CancellationToken ct)
    {
        switch (job.Status)
        {
            case JobStatus.WaitingApproval:
                var role = catalog.Find(job.Type)?.Options.ApproversRole ?? Role.Approver;
                return $"waiting for approval by a principal with role {role.Name()} (not {job.Actor})" +
                    (job.ApprovalExpiresAt is { } expires ? $" until {expires:O}" : "");
            case JobStatus.Pending when job.ConcurrencyKey is not null && await store.HolderOfAsync(job.ConcurrencyKey, ct) is { } holder && holder != job.Id:
                return $"waiting for job {holder}, which holds concurrency key {job.ConcurrencyKey}";
            case JobStatus.Pending:
                return "queued: waiting for a free worker";
            case JobStatus.Running when job.LeaseExpiresAt is { } lease && lease < store.Now():
                return "its worker stopped responding; it resumes from its unfinished step when another worker claims it";
            default:
                return null;
        }
    }

    public IReadOnlyList<RunbookDescription> DescribeRunbooks() => catalog.All.OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => new RunbookDescription(
        r.Name, r.Description, r.Options.RequiresApproval, r.Options.ApproversRole.Name(), r.Options.Timeout?.ToString(),
        r.Parameters.Select(p => new RunbookParameterDescription(p.Name, p.Type.ToString().ToLowerInvariant(), p.Required, p.Default?.DeepClone(), p.Values, p.Min, p.Max, p.Pattern, p.Description)).ToList(),
        r.Steps.Select(s => new RunbookStepDescription(s.Name, s.Kind)).ToList(), r.Source)).ToList();

    private static string Truncate(string s) => s.Length <= 63 ? s : s[..63] + "…";
}
