using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine;
using Opsgate.Server.Http;

namespace Opsgate.Server.Jobs;

internal sealed record SubmitJobRequest(string Type, JsonObject? Params = null, bool? DryRun = null);

/// <summary>apiops' body for POST /ops/jobs/pg-rebuild.</summary>
internal sealed record PgRebuildRequest(string Namespace, string Statefulset, int Ordinal, int TargetReplicas = 1, string? Cluster = null, bool? DryRun = null);

internal sealed record DecisionRequest(string? Comment = null);

/// <summary>POST /api/v1/jobs/{id}/retry: no body (or no hosts) runs a failed job again in place; hosts "failed" starts a new job on its failed hosts.</summary>
internal sealed record RetryRequest(string? Hosts = null);

/// <summary>
/// A retry on part of a job's hosts (<c>{"hosts": "failed"}</c>), offered by the feature that knows a job's hosts
/// (Ansible registers its own), so the jobs API needs to know none of them.
/// </summary>
internal interface IHostsRetry
{
    /// <summary>The value of <c>hosts</c> it answers to.</summary>
    string Hosts { get; }

    /// <summary>What it retries on, for the message when <c>hosts</c> names none.</summary>
    string Description { get; }

    Task<Results<Created<JobView>, ProblemHttpResult>> StartAsync(HttpContext http, JobRow original, CancellationToken ct);
}

internal sealed record StepView(string Name, int Order, string Kind, string Status, string? Detail, int Attempts, DateTime? StartedAt, DateTime? FinishedAt, JsonNode? Output);

internal sealed record JobView(
    string JobId, string Type, string Status, JsonObject Params, bool DryRun, string? Actor, string? SourceIp, DateTime CreatedAt,
    DateTime? StartedAt, DateTime? FinishedAt, int Attempt, string? PendingReason, string? Error, string? DecidedBy, string? DecisionComment,
    DateTime? ApprovalExpiresAt, bool CancelRequested, IReadOnlyList<StepView> Steps)
{
    /// <summary>On a child job (a shard of a sharded Ansible run): the job it belongs to, and which shard it is.</summary>
    public string? ParentId { get; init; }
    public int? ShardIndex { get; init; }
    public int? ShardHosts { get; init; }

    /// <summary>On a sharded parent (GET /api/v1/jobs/{id} only): the child jobs of its latest run, by shard.</summary>
    public IReadOnlyList<ChildJobView>? Children { get; init; }

    /// <summary>On a retry on failed hosts: the job whose failed and unreachable hosts it runs over.</summary>
    public string? RetryOf { get; init; }

    /// <summary>On a job retried on its failed hosts (GET /api/v1/jobs/{id} only): those retries, oldest first.</summary>
    public IReadOnlyList<RetryJobView>? Retries { get; init; }
}

internal sealed record ChildJobView(string JobId, int ShardIndex, int Hosts, string Status, string? Error);

internal sealed record RetryJobView(string JobId, string Status, DateTime CreatedAt);

internal sealed record JobList(IReadOnlyList<JobView> Items, string? NextCursor);

internal sealed record CommandResult(string JobId, string Status);

/// <summary>/api/v1/jobs (and apiops' /ops/jobs): submit, inspect, follow live, cancel, retry, approve, reject.</summary>
internal static class JobsApi
{
    public static void MapJobsApi(this WebApplication app)
    {
        var jobs = app.MapGroup("/api/v1/jobs").WithTags("Jobs");
        jobs.MapPost("/", Submit).RequireRole(Role.Operator, AccessScope.Submit).Audited("job.submit", "job")
            .WithSummary("Submit a job: a runbook type and its parameters. Returns at once with the job id.");
        jobs.MapGet("/", List).RequireRole(Role.Viewer, AccessScope.Jobs).WithSummary("Jobs, newest first; pass next_cursor back as cursor.");
        jobs.MapGet("/{id}", Get).RequireRole(Role.Viewer, AccessScope.Job).WithSummary("A job and each of its steps.");
        jobs.MapGet("/{id}/events", JobEventStream.ServerSentEventsAsync).RequireRole(Role.Viewer, AccessScope.Job)
            .WithSummary("The job's events as Server-Sent Events; resumes after Last-Event-ID (or ?after=seq) without gaps.");
        jobs.MapGet("/{id}/events/ws", JobEventStream.WebSocketAsync).RequireRole(Role.Viewer, AccessScope.Job)
            .WithSummary("The same events over a WebSocket, one JSON message each; ?after=seq resumes.");
        jobs.MapPost("/{id}/cancel", Cancel).RequireRole(Role.Operator, AccessScope.Job).Audited("job.cancel", "job").WithSummary("Cancel a job; a running step is stopped.");
        jobs.MapPost("/{id}/retry", Retry).RequireRole(Role.Operator, AccessScope.Job).Audited("job.retry", "job")
            .WithSummary("Run a failed job again from the failed step; with {\"hosts\": \"failed\"}, start a new job on its failed and unreachable hosts.");
        jobs.MapPost("/{id}/approve", Approve).RequireRole(Role.Viewer, AccessScope.Job).Audited("job.approve", "job").WithSummary("Approve a job waiting for approval.");
        jobs.MapPost("/{id}/reject", Reject).RequireRole(Role.Viewer, AccessScope.Job).Audited("job.reject", "job").WithSummary("Reject a job waiting for approval.");

        var ops = app.MapGroup("/ops/jobs").WithTags("apiops-compatible jobs");
        ops.MapPost("/pg-rebuild", PgRebuild).RequireRole(Role.Operator, AccessScope.Submit).Audited("job.submit", "job")
            .WithSummary("apiops: submit a pg-rebuild job on the cluster named default (or the one given); answers in apiops' status words.");
        ops.MapGet("/{id}", GetInApiopsWords).RequireRole(Role.Viewer, AccessScope.Job)
            .WithSummary("apiops: a job and its steps, with apiops' status words (pending, running, success, failed).");

        app.MapGet("/api/v1/runbooks", (JobSubmission submission) => TypedResults.Ok(submission.DescribeRunbooks()))
            .RequireRole(Role.Viewer, AccessScope.Global).WithTags("Jobs").WithSummary("Job types (runbooks) with their parameter schema.");
    }

    private static async Task<Results<Created<JobView>, ProblemHttpResult>> Submit(
        SubmitJobRequest request, HttpContext http, JobSubmission submission, bool dryRun = false)
    {
        http.SetAuditBody(request);
        return await SubmitAsync(http, submission, request.Type, request.Params, request.DryRun ?? dryRun);
    }

    private static async Task<Results<Created<JobView>, ProblemHttpResult>> PgRebuild(
        PgRebuildRequest request, HttpContext http, JobSubmission submission, bool dryRun = false)
    {
        http.SetAuditBody(request);
        var parameters = new JsonObject
        {
            ["namespace"] = request.Namespace,
            ["statefulset"] = request.Statefulset,
            ["ordinal"] = request.Ordinal,
            ["target_replicas"] = request.TargetReplicas,
        };
        if (request.Cluster is not null)
            parameters["cluster"] = request.Cluster;
        var submitted = await SubmitAsync(http, submission, "pg-rebuild", parameters, request.DryRun ?? dryRun);
        return submitted.Result is Created<JobView> created
            ? TypedResults.Created(created.Location, ApiopsWords.Of(created.Value!))
            : submitted;
    }

    private static async Task<Results<Ok<JobList>, ProblemHttpResult>> List(
        HttpContext http, JobStore store, JobSubmission submission, CancellationToken ct, string? status = null, string? type = null, string? cursor = null, int limit = 50)
    {
        if (limit is < 1 or > 500)
            return Problems.Invalid("limit", "must be between 1 and 500");
        if (status is not null && status is not (JobStatus.Pending or JobStatus.WaitingApproval or JobStatus.Running or JobStatus.Succeeded or JobStatus.Failed or JobStatus.Cancelled))
            return Problems.Invalid("status", "must be pending, waiting_approval, running, succeeded, failed or cancelled");
        if (cursor is not null && !JobIds.IsValid(cursor))
            return Problems.Invalid("cursor", "must be a next_cursor value from an earlier page");
        if (type is { Length: > 63 })
            return Problems.Invalid("type", "must be at most 63 characters");
        var rows = await store.ListAsync(status, type, cursor, limit, JobAccess.ListScope(http), ct);
        var views = new List<JobView>(rows.Count);
        foreach (var row in rows)
            views.Add(await ViewAsync(submission, row, [], ct));
        return TypedResults.Ok(new JobList(views, rows.Count == limit ? rows[^1].Id : null));
    }

    private static async Task<Results<Ok<JobView>, ProblemHttpResult>> Get(string id, HttpContext http, JobAccess access, JobStore store, JobSubmission submission, CancellationToken ct)
    {
        var (found, refused) = await access.CheckAsync(http, id, JobAction.Read);
        if (found is null)
            return refused!;
        var view = await ViewAsync(submission, found.Job, found.Steps, ct);
        var children = await store.ChildrenAsync(id, null, ct);
        if (children.Count > 0)
            view = view with { Children = [.. children.Select(c => new ChildJobView(c.Id, c.ShardIndex ?? 0, c.ShardHosts ?? 0, c.Status, c.Error))] };
        var retries = await store.RetriesAsync(id, ct);
        if (retries.Count > 0)
            view = view with { Retries = [.. retries.Select(r => new RetryJobView(r.Id, r.Status, r.CreatedAt))] };
        return TypedResults.Ok(view);
    }

    private static async Task<Results<Ok<JobView>, ProblemHttpResult>> GetInApiopsWords(
        string id, HttpContext http, JobAccess access, JobStore store, JobSubmission submission, CancellationToken ct)
    {
        var answer = await Get(id, http, access, store, submission, ct);
        return answer.Result is Ok<JobView> ok ? TypedResults.Ok(ApiopsWords.Of(ok.Value!)) : answer;
    }

    private static Task<Results<Ok<CommandResult>, ProblemHttpResult>> Cancel(string id, HttpContext http, JobAccess access, JobCommands commands) =>
        Command(http, access, id, JobAction.Cancel, by => commands.CancelAsync(id, by.Name, http.RequestAborted), "only pending, waiting or running jobs can be cancelled");

    /// <summary>
    /// Without hosts, the failed job runs again in place from its failed step (200). With <c>hosts: "failed"</c>, a new
    /// job runs over the original's failed and unreachable hosts (201, see <see cref="IHostsRetry"/>; Ansible offers "failed"), audited with
    /// the original as the resource and the new job's id.
    /// </summary>
    private static async Task<Results<Ok<CommandResult>, Created<JobView>, ProblemHttpResult>> Retry(
        string id, HttpContext http, JobAccess access, JobCommands commands, [FromServices] IEnumerable<IHostsRetry> hostRetries, [FromBody] RetryRequest? request)
    {
        if (request?.Hosts is null)
        {
            var inPlace = await Command(http, access, id, JobAction.Retry, by => commands.RetryAsync(id, by.Name, http.RequestAborted), "only failed jobs can be retried");
            return inPlace.Result is Ok<CommandResult> ok ? ok : (ProblemHttpResult)inPlace.Result;
        }
        http.SetAuditBody(request);
        http.Audit().ResourceName = id.Length <= 64 ? id : id[..64];
        if (JobIds.IsValid(id))
            http.Audit().JobId = id;
        if (hostRetries.FirstOrDefault(r => r.Hosts == request.Hosts) is not { } retry)
            return Problems.Invalid("hosts", $"must be {string.Concat(hostRetries.Select(r => $"\"{r.Hosts}\" ({r.Description}), or "))}left out to retry the job in place");
        var (grant, refused) = await access.CheckAsync(http, id, JobAction.Retry);
        if (grant is null)
            return refused!;
        var started = await retry.StartAsync(http, grant.Job, http.RequestAborted);
        // The submit path records the new job's id as the resource, and its parameters (redacted) as the body: this
        // entry is about the original, and what was asked was the retry.
        http.SetAuditBody(request);
        http.Audit().ResourceName = id;
        return started.Result is Created<JobView> created ? created : (ProblemHttpResult)started.Result;
    }

    private static Task<Results<Ok<CommandResult>, ProblemHttpResult>> Approve(string id, HttpContext http, JobAccess access, JobCommands commands, [FromBody] DecisionRequest? request)
    {
        if (request is not null)
            http.SetAuditBody(request);
        return Command(http, access, id, JobAction.Decide, by => commands.ApproveAsync(id, by.Name, by.Namespaces, request?.Comment, http.RequestAborted),
            "only jobs waiting for approval can be approved");
    }

    private static Task<Results<Ok<CommandResult>, ProblemHttpResult>> Reject(string id, HttpContext http, JobAccess access, JobCommands commands, [FromBody] DecisionRequest? request)
    {
        if (request is not null)
            http.SetAuditBody(request);
        return Command(http, access, id, JobAction.Decide, by => commands.RejectAsync(id, by.Name, request?.Comment, http.RequestAborted),
            "only jobs waiting for approval can be rejected");
    }

    private static async Task<Results<Ok<CommandResult>, ProblemHttpResult>> Command(
        HttpContext http, JobAccess access, string id, JobAction action, Func<Principal, Task<(CommandOutcome Outcome, string? Status)>> command, string wrongState)
    {
        http.Audit().ResourceName = id.Length <= 64 ? id : id[..64];
        if (JobIds.IsValid(id))
            http.Audit().JobId = id;
        var (grant, refused) = await access.CheckAsync(http, id, action);
        if (grant is null)
            return refused!;
        var (outcome, status) = await command(http.Principal()!);
        return outcome switch
        {
            CommandOutcome.Done => TypedResults.Ok(new CommandResult(id, status!)),
            CommandOutcome.NotFound => Problems.NotFound($"job {id} does not exist"),
            _ => Problems.Conflict($"job {id} is {status}: {wrongState}"),
        };
    }

    /// <summary>
    /// Submits a job for the request's caller and answers: 201 with the job, 400 naming the field, 403 naming what the
    /// caller may not do. The audit entry records the request (redacted) and the job it made.
    /// </summary>
    internal static async Task<Results<Created<JobView>, ProblemHttpResult>> SubmitAsync(
        HttpContext http, JobSubmission submission, string type, JsonObject? input, bool dryRun, string? retryOf = null)
    {
        var audit = http.Audit();
        audit.DryRun = dryRun;
        if (submission.Redacted(type, input) is { } shown)
            http.SetAuditBody(new SubmitJobRequest(type, shown, dryRun));
        var outcome = await submission.SubmitAsync(
            new SubmitRequest(http.Principal()!, http.Connection.RemoteIpAddress?.ToString(), type, input, dryRun, retryOf), http.RequestAborted);
        switch (outcome)
        {
            case SubmitOutcome.Submitted(var job, var steps):
                audit.JobId = job.Id;
                audit.ResourceName = job.Id;
                return TypedResults.Created($"/api/v1/jobs/{job.Id}", await ViewAsync(submission, job, steps, http.RequestAborted));
            case SubmitOutcome.Invalid(var field, var message):
                return Problems.Invalid(field, message);
            case SubmitOutcome.Forbidden(var message):
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: message);
            default:
                throw new InvalidOperationException($"unknown submit outcome {outcome}");
        }
    }

    internal static async Task<JobView> ViewAsync(JobSubmission submission, JobRow job, IReadOnlyList<StepRow> steps, CancellationToken ct) => new(
        job.Id, job.Type, job.Status, JobJson.Params(job.Params), job.DryRun, job.Actor, job.SourceIp, job.CreatedAt, job.StartedAt, job.FinishedAt,
        job.Attempt, await submission.PendingReasonAsync(job, ct), job.Error, job.DecidedBy, job.DecisionComment, job.ApprovalExpiresAt, job.CancelRequested,
        steps.Select(s => new StepView(s.Name, s.StepOrder, s.Kind, s.Status, s.Detail, s.Attempts, s.StartedAt, s.FinishedAt, JobJson.Output(s.Output))).ToList())
    {
        ParentId = job.ParentId,
        ShardIndex = job.ShardIndex,
        ShardHosts = job.ShardHosts,
        RetryOf = job.RetryOf,
    };
}
