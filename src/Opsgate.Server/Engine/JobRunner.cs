using System.Collections.Frozen;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine.Notifications;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Observability;

namespace Opsgate.Server.Engine;

/// <summary>
/// Runs one claimed job from its first unfinished step to the end. Each step runs with its retry policy and
/// timeout; the job's deadline, a cancel request and host shutdown all stop the running step through one
/// linked token, and the reason decides what is recorded. Losing the lease stops the run without writing
/// anything: another worker owns the job now.
/// </summary>
internal sealed partial class JobRunner(
    JobStore store, RunbookCatalog catalog, IEnumerable<IStepExecutor> executors, JobScope scope, JobSecrets secrets, JobSignals signals, JobNotifier notifier, JobCommands commands,
    OpsgateMetrics metrics, IOptions<JobsOptions> options, TimeProvider time, ILogger<JobRunner> logger)
{
    private readonly FrozenDictionary<string, IStepExecutor> _executors = executors.ToFrozenDictionary(e => e.Kind, StringComparer.Ordinal);

    private enum StopReason { None, Cancelled, TimedOut, LeaseLost, Shutdown }

    /// <param name="claim">The job, its steps, and this claim's lease token: unique per claim, so a slot that lost the lease cannot write as the slot that took over.</param>
    public async Task RunAsync(ClaimedJob claim, CancellationToken stopping)
    {
        var (job, owner) = (claim.Job, claim.Lease);
        var lease = options.Value.LeaseDuration;
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var reason = StopReason.None;
        string? cancelledBy = job.CancelRequestedBy;
        signals.Running(job.Id, by =>
        {
            reason = StopReason.Cancelled;
            cancelledBy = by ?? cancelledBy;
            cancel.Cancel();
        });
        using var held = new HeldStepStart(store, owner, options.Value.StepStartHold, time);
        using var span = JobTracing.StartJob(job);
        var context = new RunContext(job, owner, held, stopping) { Span = span };
        try
        {
            var runbook = catalog.Find(job.Type);
            if (runbook is null)
            {
                await FinishAsync(context, null, JobStatus.Failed, $"runbook '{job.Type}' is no longer loaded", stopping);
                return;
            }
            // job.started and its audit entry were committed with the claim.
            if (job.Attempt == 1)
                metrics.JobStarted(job.Type, (job.StartedAt!.Value - job.CreatedAt).TotalSeconds);
            if (job.DeadlineAt is null && runbook.Options.Timeout is { } timeout)
            {
                // From this start, not the job's first one: a retry clears the deadline and gets the whole timeout again.
                job.DeadlineAt = store.Now() + timeout;
                await store.SetDeadlineAsync(job.Id, owner, job.DeadlineAt.Value, stopping);
            }
            if (job.DeadlineAt is { } deadline)
            {
                var left = deadline - time.GetUtcNow().UtcDateTime;
                if (left <= TimeSpan.Zero)
                    reason = StopReason.TimedOut;
                cancel.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
            if (job.CancelRequested)
            {
                reason = StopReason.Cancelled;
                await cancel.CancelAsync();
            }

            var heartbeat = new PeriodicTimer(lease / 3, time);
            var beating = HeartbeatAsync(job, owner, lease, cancel, (r, by) => { reason = r; cancelledBy = by ?? cancelledBy; }, heartbeat);
            try
            {
                await RunStepsAsync(context, runbook, claim.Steps, cancel.Token);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                if (reason == StopReason.None)
                    reason = stopping.IsCancellationRequested ? StopReason.Shutdown : StopReason.TimedOut;
            }
            finally
            {
                // Disposing the timer ends the heartbeat's wait without an exception (cancelling it threw one per job:
                // bench/, 4-5% of the server's CPU); a renewal under way is awaited.
                heartbeat.Dispose();
                await beating;
            }

            switch (context.Outcome ?? reason)
            {
                case StopReason.LeaseLost:
                    LogLeaseLost(logger, job.Id);
                    return;
                case StopReason.Shutdown:
                    // A last step that finished is recorded, so the job does not run it again when it resumes.
                    if (context.LastStep is { } last)
                        await store.UpdateStepAsync(last, owner, CancellationToken.None);
                    await store.ReleaseLeaseAsync(job.Id, owner);
                    return;
            }
            var (status, error) = (context.Failure, reason) switch
            {
                (not null, _) => (JobStatus.Failed, context.Failure),
                (_, StopReason.Cancelled) => (JobStatus.Cancelled, $"cancelled by {cancelledBy ?? "a user"}"),
                (_, StopReason.TimedOut) => (JobStatus.Failed, $"the job timed out (runbook timeout {runbook.Options.Timeout})"),
                _ => (JobStatus.Succeeded, null),
            };
            await FinishAsync(context, runbook, status, error, CancellationToken.None);
        }
        finally
        {
            signals.Stopped(job.Id);
        }
    }

    private sealed class RunContext(JobRow job, string owner, HeldStepStart start, CancellationToken stopping)
    {
        public JobRow Job { get; } = job;
        public string Owner { get; } = owner;
        /// <summary>The running step's start, while it is held back (see <see cref="HeldStepStart"/>).</summary>
        public HeldStepStart Start { get; } = start;
        /// <summary>Host shutdown: a step stopped by it runs again when the job resumes.</summary>
        public CancellationToken Stopping { get; } = stopping;
        public string? Failure { get; set; }
        public StopReason? Outcome { get; set; }
        /// <summary>The job's last step, succeeded and not yet written: it is written with the job's finish, in one transaction.</summary>
        public StepWrite? LastStep { get; set; }
        /// <summary>The job's secret parameter values, masked in everything its steps report (see <see cref="JobSecrets"/>).</summary>
        public IReadOnlyList<string> Secrets { get; set; } = [];
        /// <summary>This run's span (null when tracing is off).</summary>
        public Activity? Span { get; init; }
    }

    private async Task RunStepsAsync(RunContext run, Runbook runbook, IReadOnlyList<StepRow> steps, CancellationToken ct)
    {
        var job = run.Job;
        // The steps were stored from the runbook as it was at submit; running them from a different version would
        // pair stored steps with the wrong definitions (or index past the end), so a changed runbook fails the job.
        if (!steps.Select(s => (s.Name, s.Kind)).SequenceEqual(runbook.Steps.Select(s => (s.Name, s.Kind))))
        {
            run.Failure = $"runbook '{runbook.Name}' changed since the job was submitted: the job has steps " +
                $"[{string.Join(", ", steps.Select(s => s.Name))}], the runbook now [{string.Join(", ", runbook.Steps.Select(s => s.Name))}]; submit it again";
            return;
        }
        // Steps run with the secret values; what is recorded about them (the step.started inputs) shows the stored, redacted ones.
        var shown = JsonNode.Parse(job.Params)!.AsObject();
        JsonObject parameters;
        try
        {
            (parameters, run.Secrets) = await secrets.RevealAsync(job, shown, ct);
        }
        catch (StepFailedException e)
        {
            run.Failure = e.Message;
            return;
        }
        var outputs = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var done in steps.Where(s => s.Status == StepStatus.Succeeded && s.Output is not null))
            outputs[done.Name] = JsonNode.Parse(done.Output!)!.AsObject();

        foreach (var step in steps.Where(s => !StepStatus.IsDone(s.Status)))
        {
            using var span = JobTracing.StartStep(step);
            var definition = runbook.Steps[step.StepOrder - 1];
            var executor = _executors[definition.Kind];
            JsonObject inputs;
            try
            {
                inputs = Templates.Render(definition.With, parameters, outputs)!.AsObject();
                StepInputValidator.ValidateRendered(step.Name, executor, inputs);
            }
            catch (Exception e) when (e is TemplateException or ParameterException)
            {
                await FailStepAsync(run, step, $"inputs could not be prepared: {e.Message}", ct);
                return;
            }
            if (!await CheckTargetAsync(run, step, definition, executor, inputs, ct))
                return;
            // Found running at the claim: the worker that ran it died (or shut down) mid-step. A step that must not
            // run twice fails here, with what is already recorded (events, results) kept, instead of running again.
            var resumed = step.Status == StepStatus.Running;
            if (resumed && executor.NotResumable(inputs) is { } notResumable)
            {
                await FailStepAsync(run, step, notResumable, ct);
                return;
            }
            var shownInputs = run.Secrets.Count == 0 ? inputs : Templates.Render(definition.With, shown, outputs)!.AsObject();
            if (!await RunStepAsync(run, step, definition, executor, inputs, shownInputs, outputs, last: step.StepOrder == steps[^1].StepOrder, ct))
                return;
        }
    }

    /// <summary>
    /// Holds the step to where the job may act, with the inputs it is about to run with: the cluster's allowlist, the
    /// submitter's and the approver's. A target only learned now (from an earlier step's outputs) is recorded with the
    /// job once allowed. False (the step failed, and the refusal is in its audit entry) when the job must stop here.
    /// </summary>
    private async Task<bool> CheckTargetAsync(RunContext run, StepRow step, RunbookStep definition, IStepExecutor executor, JsonObject inputs, CancellationToken ct)
    {
        if (JobScope.Of(executor.Target, inputs) is not { } target)
            return true;
        if (await scope.CheckAsync(target, JobScope.Holders(run.Job), ct) is { } refusal)
        {
            await FailStepAsync(run, step, $"refused: {refusal.Message}", ct);
            return false;
        }
        if (JobScope.LearnedAtRunTime(definition, executor.Target!))
            await store.AddTargetAsync(run.Job.Id, target, ct);
        return true;
    }

    /// <summary>Runs one step with its retries. False when the job must stop here.</summary>
    /// <param name="last">The job's last step: its success is written with the job's finish (<see cref="RunContext.LastStep"/>).</param>
    /// <param name="shownInputs">The inputs as recorded: rendered from the stored parameters, secret values redacted.</param>
    private async Task<bool> RunStepAsync(RunContext run, StepRow step, RunbookStep definition, IStepExecutor executor, JsonObject inputs,
        JsonObject shownInputs, Dictionary<string, JsonObject> outputs, bool last, CancellationToken ct)
    {
        var job = run.Job;
        for (var attempt = 1; ; attempt++)
        {
            // A cancel, the job's deadline or shutdown that came before this step stops the job here, before it starts
            // (a held start would not notice: nothing is written until the step has run).
            ct.ThrowIfCancellationRequested();
            step.Status = StepStatus.Running;
            step.Attempts++;
            step.StartedAt = store.Now();
            step.FinishedAt = null;
            step.Output = null;
            step.Detail = job.DryRun ? "planning (dry run)" : "running";
            var start = new StepWrite(step, [Event("step.started", step, new JsonObject { ["attempt"] = step.Attempts, ["inputs"] = shownInputs.DeepClone() })],
                [JobAudit.Entry(job, "job.step.start", AuditStatus.Success, null, step)]);
            // A kind that writes about the job itself, or must not run twice, has its start written before it runs.
            if (options.Value.StepStartHold > TimeSpan.Zero && !executor.RecordsItself && executor.NotResumable(inputs) is null)
                run.Start.Hold(start);
            else if (!await store.UpdateStepAsync(start, run.Owner, ct))
                return LeaseLost(run);

            using var stepTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (definition.Timeout is { } limit)
                stepTimeout.CancelAfter(limit);
            var context = new StepContext(job.Id, run.Owner, step.Name, step.StepOrder, step.Attempts, job.DryRun, inputs,
                (detail, data) => ProgressAsync(run, step, detail, data)) { Secrets = run.Secrets };
            var watch = Stopwatch.StartNew();
            string? error;
            var retryable = true;
            try
            {
                var outcome = await executor.ExecuteAsync(context, stepTimeout.Token);
                if (run.Secrets.Count > 0)
                    outcome = new StepOutcome(JobSecrets.Mask(outcome.Detail, run.Secrets)!, (JsonObject?)JobSecrets.Mask(outcome.Outputs, run.Secrets));
                step.Status = StepStatus.Succeeded;
                step.Detail = outcome.Detail;
                step.FinishedAt = store.Now();
                step.Output = outcome.Outputs?.ToJsonString();
                if (outcome.Outputs is not null)
                    outputs[step.Name] = outcome.Outputs;
                var succeeded = await run.Start.WithStartAsync(new StepWrite(step,
                    [Event("step.succeeded", step, new JsonObject { ["detail"] = outcome.Detail, ["outputs"] = outcome.Outputs?.DeepClone(), ["seconds"] = watch.Elapsed.TotalSeconds })],
                    [JobAudit.Entry(job, "job.step.finish", AuditStatus.Success, null, step)]));
                // A step that must not run twice is recorded at once: a crash before the job's finish would otherwise
                // leave it running, and the resumed job would fail it although it succeeded.
                if (last && executor.NotResumable(inputs) is null)
                    run.LastStep = succeeded;
                else if (!await store.UpdateStepAsync(succeeded, run.Owner, CancellationToken.None))
                    return LeaseLost(run);
                return true;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await StopStepAsync(run, step, "stopped while running", executor.NotResumable(inputs) is null);
                throw;
            }
            catch (OperationCanceledException) when (stepTimeout.IsCancellationRequested)
            {
                error = $"timed out after {definition.Timeout}";
            }
            catch (StepFailedException e)
            {
                error = e.Message;
                retryable = false;
                step.Output = e.Outputs is null ? null : ((JsonObject?)JobSecrets.Mask(e.Outputs, run.Secrets))!.ToJsonString();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = e.Message;
            }

            error = JobSecrets.Mask(error, run.Secrets)!;
            if (!retryable || attempt >= definition.Attempts)
            {
                await FailStepAsync(run, step, error, ct);
                return false;
            }
            var delay = definition.Backoff * Math.Pow(2, attempt - 1);
            step.Detail = $"attempt {attempt} failed: {error}; retrying in {delay.TotalSeconds:0.###} s";
            var retrying = new StepWrite(step, [Event("step.retrying", step, new JsonObject { ["error"] = error, ["attempt"] = attempt, ["delay_seconds"] = delay.TotalSeconds })], []);
            if (!await store.UpdateStepAsync(await run.Start.WithStartAsync(retrying), run.Owner, ct))
                return LeaseLost(run);
            try
            {
                await Task.Delay(delay, time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await StopStepAsync(run, step, $"stopped while waiting to retry (attempt {attempt} failed: {error})", rerunnable: true);
                throw;
            }
        }
    }

    /// <summary>
    /// Records a step the run stopped. Cancel or the job's timeout skip it (the job is over); host shutdown puts it
    /// back to pending, so the job resumes at this step rather than after it. A step that is not
    /// <paramref name="rerunnable"/> stays running, so the resume fails it as it would after a crash.
    /// </summary>
    private async Task StopStepAsync(RunContext run, StepRow step, string detail, bool rerunnable)
    {
        var resumes = run.Stopping.IsCancellationRequested;
        step.Status = !resumes ? StepStatus.Skipped : rerunnable ? StepStatus.Pending : StepStatus.Running;
        step.Detail = !resumes ? detail : rerunnable ? $"{detail}; runs again when the job resumes" : $"{detail} by the server's shutdown";
        step.FinishedAt = resumes ? null : store.Now();
        var stopped = new StepWrite(step, [Event(resumes ? "step.interrupted" : "step.stopped", step, new JsonObject { ["detail"] = step.Detail })],
            resumes ? [] : [JobAudit.Entry(run.Job, "job.step.finish", AuditStatus.Error, detail, step)]);
        await store.UpdateStepAsync(await run.Start.WithStartAsync(stopped), run.Owner, CancellationToken.None);
    }

    private async Task FailStepAsync(RunContext run, StepRow step, string error, CancellationToken ct)
    {
        step.Status = StepStatus.Failed;
        step.Detail = error;
        step.FinishedAt = store.Now();
        run.Failure = $"step {step.StepOrder} ({step.Name}) failed: {error}";
        var failed = new StepWrite(step, [Event("step.failed", step, new JsonObject { ["error"] = error })], [JobAudit.Entry(run.Job, "job.step.finish", AuditStatus.Error, error, step)]);
        if (!await store.UpdateStepAsync(await run.Start.WithStartAsync(failed), run.Owner, CancellationToken.None))
            LeaseLost(run);
        _ = ct;
    }

    private static bool LeaseLost(RunContext run)
    {
        run.Outcome = StopReason.LeaseLost;
        return false;
    }

    private async Task ProgressAsync(RunContext run, StepRow step, string detail, JsonObject? data)
    {
        detail = JobSecrets.Mask(detail, run.Secrets)!;
        step.Detail = detail;
        var payload = JobSecrets.Mask(data, run.Secrets)?.AsObject() ?? [];
        payload["detail"] = detail;
        if (!await store.UpdateStepAsync(await run.Start.WithStartAsync(new StepWrite(step, [Event("step.progress", step, payload)], [])), run.Owner, CancellationToken.None))
            run.Outcome = StopReason.LeaseLost;
    }

    private async Task FinishAsync(RunContext run, Runbook? runbook, string status, string? error, CancellationToken ct)
    {
        var job = run.Job;
        var finished = new JsonObject { ["status"] = status, ["error"] = error };
        if (!await store.FinishAsync(job, run.Owner, status, error, [new NewEvent("job.finished", null, finished, Final: true)], ct,
                JobAudit.Entry(job, $"job.{status}", status == JobStatus.Succeeded ? AuditStatus.Success : AuditStatus.Error, error), run.LastStep))
        {
            LogLeaseLost(logger, job.Id);
            return;
        }
        JobTracing.Finished(run.Span, status, error);
        // Child jobs (shards) are part of their parent's run: the parent is announced, and whatever of it is still
        // going stops with it (cancel, timeout, fail_fast, a failure).
        if (job.ParentId is null)
            notifier.JobFinished(job.Id);
        // Only a job whose runbook can start children, or that started some in an earlier run, can have any.
        if (runbook is null || job.ShardRound is not null || runbook.Steps.Any(s => _executors[s.Kind].StartsChildJobs))
            await commands.CancelChildrenAsync(job.Id, $"parent job {job.Id} ({status})");
        var duration = (store.Now() - job.StartedAt!.Value).TotalSeconds;
        metrics.JobFinished(job.Type, status, duration);
        LogFinished(logger, job.Id, job.Type, status, error);
    }

    /// <summary>Renews the lease on every tick of <paramref name="timer"/> until the run disposes it.</summary>
    private async Task HeartbeatAsync(JobRow job, string owner, TimeSpan lease, CancellationTokenSource cancel, Action<StopReason, string?> stopped, PeriodicTimer timer)
    {
        while (await timer.WaitForNextTickAsync())
        {
            (bool CancelRequested, string? By)? state;
            try
            {
                state = await store.RenewLeaseAsync(job.Id, owner, lease, CancellationToken.None);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Retried on the next tick (the loop goes on): the lease still has two thirds of its time.
                LogHeartbeatFailed(logger, job.Id, e);
                continue;
            }
            if (state is null)
            {
                stopped(StopReason.LeaseLost, null);
                await cancel.CancelAsync();
                return;
            }
            if (state.Value.CancelRequested)
            {
                stopped(StopReason.Cancelled, state.Value.By);
                await cancel.CancelAsync();
                return;
            }
        }
    }

    private static NewEvent Event(string type, StepRow step, JsonObject data)
    {
        data["step"] = step.Name;
        return new NewEvent(type, step.StepOrder, data);
    }


    [LoggerMessage(EventId = 600, Level = LogLevel.Warning, Message = "Lost the lease of job {JobId}; another worker owns it now")]
    private static partial void LogLeaseLost(ILogger logger, string jobId);

    [LoggerMessage(EventId = 601, Level = LogLevel.Information, Message = "Job {JobId} ({Type}) {Status} {Error}")]
    private static partial void LogFinished(ILogger logger, string jobId, string type, string status, string? error);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "Could not renew the lease of job {JobId}")]
    private static partial void LogHeartbeatFailed(ILogger logger, string jobId, Exception exception);
}
