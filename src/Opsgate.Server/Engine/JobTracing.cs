using System.Diagnostics;

namespace Opsgate.Server.Engine;

/// <summary>
/// The engine's spans: one per run of a job and one per step, in the trace of whatever queued the job (the submit
/// request, or a parent job's step for a shard), through the traceparent stored with the job. A job runs later and
/// maybe on another replica, so the request's span is long over: the job's span is its child all the same, as a queue
/// consumer's span is its producer's. With no listener (no collector configured) nothing is created.
/// </summary>
internal static class JobTracing
{
    public const string SourceName = "Opsgate.Engine";

    // One per process, as .NET's tracing guidance has it: listeners subscribe by name, not by instance.
    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>The W3C traceparent of the current span, stored with a job being queued; null when there is none.</summary>
    public static string? CurrentParent() => Activity.Current is { IdFormat: ActivityIdFormat.W3C } current ? current.Id : null;

    public static Activity? StartJob(JobRow job)
    {
        if (!Source.HasListeners())
            return null;
        ActivityContext.TryParse(job.TraceParent, null, isRemote: true, out var parent);
        var span = Source.StartActivity($"job {job.Type}", ActivityKind.Consumer, parent);
        span?.SetTag("opsgate.job.id", job.Id);
        span?.SetTag("opsgate.job.type", job.Type);
        span?.SetTag("opsgate.job.attempt", job.Attempt);
        span?.SetTag("opsgate.job.dry_run", job.DryRun);
        return span;
    }

    /// <summary>The job's final status on its span; a job that did not succeed marks the span as an error, with its error.</summary>
    public static void Finished(Activity? span, string status, string? error)
    {
        if (span is null)
            return;
        span.SetTag("opsgate.job.status", status);
        if (status != JobStatus.Succeeded)
            span.SetStatus(ActivityStatusCode.Error, error);
    }

    /// <summary>A step's span, under the job's; it ends (with the step's status) when the returned value is disposed.</summary>
    public static StepSpan StartStep(StepRow step)
    {
        var span = Source.StartActivity($"step {step.Kind}");
        span?.SetTag("opsgate.step.name", step.Name);
        span?.SetTag("opsgate.step.kind", step.Kind);
        span?.SetTag("opsgate.step.order", step.StepOrder);
        return new StepSpan(span, step);
    }

    internal readonly struct StepSpan(Activity? span, StepRow step) : IDisposable
    {
        public void Dispose()
        {
            if (span is null)
                return;
            span.SetTag("opsgate.step.status", step.Status);
            span.SetTag("opsgate.step.attempts", step.Attempts);
            // The detail is what the API shows for the step: secret values are already masked in it.
            if (step.Status == StepStatus.Failed)
                span.SetStatus(ActivityStatusCode.Error, step.Detail);
            span.Dispose();
        }
    }
}
