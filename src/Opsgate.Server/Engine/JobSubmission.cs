using System.Text.Json.Nodes;
using Opsgate.Server.Access;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Engine;

internal sealed record RunbookDescription(string Name, string? Description, bool RequiresApproval, string ApproversRole, string? Timeout,
    IReadOnlyList<RunbookParameterDescription> Parameters, IReadOnlyList<RunbookStepDescription> Steps, string Source);

internal sealed record RunbookParameterDescription(string Name, string Type, bool Required, JsonNode? Default, IReadOnlyList<string>? Values,
    long? Min, long? Max, string? Pattern, string? Description, bool Secret);

internal sealed record RunbookStepDescription(string Name, string Kind);

/// <summary>A submit as the engine takes it: who asks (from where), for which runbook, with what.</summary>
/// <param name="RetryOf">Set for a retry on failed hosts (<see cref="Ansible.FailedHostsRetry"/>): the job it was made from.</param>
internal sealed record SubmitRequest(Principal Principal, string? SourceIp, string Type, JsonObject? Params, bool DryRun, string? RetryOf = null);

/// <summary>How a submit ended: the job stored, or why not (a field and what is wrong with it; a refusal of the caller).</summary>
internal abstract record SubmitOutcome
{
    private SubmitOutcome()
    {
    }

    internal sealed record Submitted(JobRow Job, IReadOnlyList<StepRow> Steps) : SubmitOutcome;

    internal sealed record Invalid(string Field, string Message) : SubmitOutcome;

    internal sealed record Forbidden(string Message) : SubmitOutcome;
}

/// <summary>
/// Turns a submit request into a queued job: the runbook is found, parameters bound and checked, step inputs
/// checked against their kinds, Kubernetes targets checked against the cluster's and the caller's namespace
/// allowlists — all before anything is stored, so a bad request is a 4xx and never a failed job.
/// </summary>
internal sealed class JobSubmission(RunbookCatalog catalog, IEnumerable<IStepExecutor> executors, JobStore store, JobScope scope,
    JobSecrets secrets, JobAdmission admission)
{
    private readonly Dictionary<string, IStepExecutor> _executors = executors.ToDictionary(e => e.Kind, StringComparer.Ordinal);

    /// <summary>
    /// The request as the audit log shows it: <paramref name="input"/> with the runbook's secret parameters (and
    /// secret-named extra vars) redacted. Null when there is nothing to redact (most runbooks have no secret or object
    /// parameter, and then nothing is copied).
    /// </summary>
    public JsonObject? Redacted(string type, JsonObject? input) =>
        catalog.Find(type) is { } runbook && runbook.Parameters.Any(p => p.Secret || p.Type == ParameterType.Object)
        && input?.DeepClone() is JsonObject shown && secrets.Take(runbook, shown).Count > 0 ? shown : null;

    public async Task<SubmitOutcome> SubmitAsync(SubmitRequest request, CancellationToken ct)
    {
        var (principal, type) = (request.Principal, request.Type);
        if (catalog.Find(type) is not { } runbook)
            return new SubmitOutcome.Invalid("type", $"unknown job type '{Truncate(type)}'; known types: {string.Join(", ", catalog.All.Select(r => r.Name).Order(StringComparer.Ordinal))}");

        JsonObject parameters;
        try
        {
            parameters = ParameterBinder.Bind(runbook, request.Params);
            StepInputValidator.Validate(runbook, parameters, _executors);
        }
        catch (ParameterException e)
        {
            return new SubmitOutcome.Invalid(e.Field, e.Message);
        }
        var targets = new List<JobTarget>();
        var submitter = new ScopeHolder(principal.Name, principal.Namespaces);
        foreach (var (step, target) in scope.KnownAtSubmit(runbook, parameters))
        {
            switch (await scope.CheckAsync(target, [submitter], ct))
            {
                case { Kind: RefusalKind.UnknownCluster } unknown:
                    return new SubmitOutcome.Invalid(runbook.Parameter("cluster") is not null ? "params.cluster" : $"steps.{step.Name}.cluster", unknown.Message);
                case { } refusal:
                    return new SubmitOutcome.Forbidden(refusal.Message);
            }
            targets.Add(target);
        }
        // Use first: checking references may fetch a project with its credential, which the caller must be allowed to use.
        if (await StepUseCheck.CheckAsync(runbook, parameters, _executors, principal, ct) is { } forbidden)
            return new SubmitOutcome.Forbidden(forbidden);
        if (await CheckReferencesAsync(runbook, parameters, ct) is { } dangling)
            return dangling;

        var id = JobIds.New(new DateTimeOffset(store.Now()));
        await secrets.SealAsync(id, runbook, parameters, ct);

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
            id, runbook.Name, parameters, request.DryRun,
            runbook.Options.RequiresApproval ? JobStatus.WaitingApproval : JobStatus.Pending,
            principal.Name, principal.Id, request.SourceIp, concurrencyKey,
            runbook.Options.RequiresApproval && runbook.Options.ApprovalTimeout is { } window ? now + window : null,
            runbook.Steps.Select(s => (s.Name, s.Kind)).ToList())
        {
            Targets = targets,
            SubmitterNamespaces = principal.Namespaces,
            RetryOf = request.RetryOf,
        };
        if (job.Status == JobStatus.Pending)
            await admission.AdmitAsync(ct);
        var (stored, steps) = await store.SubmitAsync(job, ct);
        if (job.Status == JobStatus.Pending)
            admission.Queued();
        return new SubmitOutcome.Submitted(stored, steps);
    }

    /// <summary>Invalid when a step's input names something that does not exist (see <see cref="IStepExecutor.CheckReferencesAsync"/>).</summary>
    private async Task<SubmitOutcome.Invalid?> CheckReferencesAsync(Runbook runbook, JsonObject parameters, CancellationToken ct)
    {
        foreach (var step in runbook.Steps.Where(s => !Templates.UsesStepOutputs(s.With)))
        {
            var inputs = Templates.RenderObject(step.With, parameters, new Dictionary<string, JsonObject>());
            if (await _executors[step.Kind].CheckReferencesAsync(inputs, ct) is { } problem)
                return new SubmitOutcome.Invalid($"steps.{step.Name}.{problem.Input}", problem.Message);
        }
        return null;
    }

    /// <summary>Why a job is not running, worked out from the current state rather than stored (so it is never stale).</summary>
    public async Task<string?> PendingReasonAsync(JobRow job, CancellationToken ct)
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
