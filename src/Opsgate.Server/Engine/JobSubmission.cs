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
    long? Min, long? Max, string? Pattern, string? Description, bool Secret);

internal sealed record RunbookStepDescription(string Name, string Kind);

/// <summary>
/// Turns a submit request into a queued job: the runbook is found, parameters bound and checked, step inputs
/// checked against their kinds, Kubernetes targets checked against the cluster's and the caller's namespace
/// allowlists — all before anything is stored, so a bad request is a 4xx and never a failed job.
/// </summary>
internal sealed class JobSubmission(RunbookCatalog catalog, IEnumerable<IStepExecutor> executors, JobStore store, JobScope scope,
    JobSecrets secrets, JobAdmission admission)
{
    private readonly Dictionary<string, IStepExecutor> _executors = executors.ToDictionary(e => e.Kind, StringComparer.Ordinal);

    /// <param name="retryOf">Set for a retry on failed hosts (<see cref="Ansible.FailedHostsRetry"/>): the job it was made from.</param>
    public async Task<Results<Created<JobView>, ProblemHttpResult>> SubmitAsync(HttpContext http, string type, JsonObject? input, bool dryRun, string? retryOf = null)
    {
        var principal = http.Principal()!;
        var audit = http.Audit();
        audit.DryRun = dryRun;
        if (catalog.Find(type) is not { } runbook)
            return Problems.Invalid("type", $"unknown job type '{Truncate(type)}'; known types: {string.Join(", ", catalog.All.Select(r => r.Name).Order(StringComparer.Ordinal))}");

        // The audit entry shows what was asked, with the runbook's secret parameters (and secret-named extra vars) redacted.
        // Only a runbook with a secret or an object parameter can have anything to redact: most submits copy nothing.
        if (runbook.Parameters.Any(p => p.Secret || p.Type == ParameterType.Object)
            && input?.DeepClone() is JsonObject shown && secrets.Take(runbook, shown).Count > 0)
            http.SetAuditBody(new SubmitJobRequest(type, shown, dryRun));

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
        var targets = new List<JobTarget>();
        var submitter = new ScopeHolder(principal.Name, principal.Namespaces);
        foreach (var (step, target) in scope.KnownAtSubmit(runbook, parameters))
        {
            switch (await scope.CheckAsync(target, [submitter], http.RequestAborted))
            {
                case { Kind: RefusalKind.UnknownCluster } unknown:
                    return Problems.Invalid(runbook.Parameter("cluster") is not null ? "params.cluster" : $"steps.{step.Name}.cluster", unknown.Message);
                case { } refusal:
                    return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: refusal.Message);
            }
            targets.Add(target);
        }
        // Use first: checking references may fetch a project with its credential, which the caller must be allowed to use.
        if (await StepUseCheck.CheckAsync(runbook, parameters, _executors, principal, http.RequestAborted) is { } forbidden)
            return forbidden;
        if (await CheckReferencesAsync(runbook, parameters, http.RequestAborted) is { } dangling)
            return dangling;

        var id = JobIds.New(new DateTimeOffset(store.Now()));
        await secrets.SealAsync(id, runbook, parameters, http.RequestAborted);

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
            id, runbook.Name, parameters, dryRun,
            runbook.Options.RequiresApproval ? JobStatus.WaitingApproval : JobStatus.Pending,
            principal.Name, principal.Id, http.Connection.RemoteIpAddress?.ToString(), concurrencyKey,
            runbook.Options.RequiresApproval && runbook.Options.ApprovalTimeout is { } window ? now + window : null,
            runbook.Steps.Select(s => (s.Name, s.Kind)).ToList())
        {
            Targets = targets,
            SubmitterNamespaces = principal.Namespaces,
            RetryOf = retryOf,
        };
        if (job.Status == JobStatus.Pending)
            await admission.AdmitAsync(http.RequestAborted);
        var (stored, steps) = await store.SubmitAsync(job, http.RequestAborted);
        if (job.Status == JobStatus.Pending)
            admission.Queued();
        audit.JobId = job.Id;
        audit.ResourceName = job.Id;
        return TypedResults.Created($"/api/v1/jobs/{job.Id}", await ViewAsync(stored, steps, http.RequestAborted));
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

    public async Task<JobView> ViewAsync(JobRow job, IReadOnlyList<StepRow> steps, CancellationToken ct) => new(
        job.Id, job.Type, job.Status, JobsApi.ParseParams(job.Params), job.DryRun, job.Actor, job.SourceIp, job.CreatedAt, job.StartedAt, job.FinishedAt,
        job.Attempt, await PendingReasonAsync(job, ct), job.Error, job.DecidedBy, job.DecisionComment, job.ApprovalExpiresAt, job.CancelRequested,
        steps.Select(s => new StepView(s.Name, s.StepOrder, s.Kind, s.Status, s.Detail, s.Attempts, s.StartedAt, s.FinishedAt, JobsApi.ParseOutput(s.Output))).ToList())
    {
        ParentId = job.ParentId,
        ShardIndex = job.ShardIndex,
        ShardHosts = job.ShardHosts,
        RetryOf = job.RetryOf,
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
        r.Parameters.Select(p => new RunbookParameterDescription(p.Name, p.Type.ToString().ToLowerInvariant(), p.Required, p.Default?.DeepClone(), p.Values, p.Min, p.Max, p.Pattern, p.Description, p.Secret)).ToList(),
        r.Steps.Select(s => new RunbookStepDescription(s.Name, s.Kind)).ToList(), r.Source)).ToList();

    private static string Truncate(string s) => s.Length <= 63 ? s : s[..63] + "…";
}
