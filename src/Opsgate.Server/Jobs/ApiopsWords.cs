using Opsgate.Server.Engine;

namespace Opsgate.Server.Jobs;

/// <summary>
/// apiops' status words for the /ops/jobs routes: a script written for apiops polls until a job is
/// <c>success</c> or <c>failed</c>, so Opsgate's finer states fold into apiops' four there. The canonical
/// /api/v1/jobs routes keep Opsgate's own words; <c>pending_reason</c> and <c>error</c> still tell the cases apart.
/// </summary>
internal static class ApiopsWords
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Success = "success";
    public const string Failed = "failed";

    public static JobView Of(JobView job) => job with
    {
        Status = ForJob(job.Status),
        Steps = [.. job.Steps.Select(s => s with { Status = ForStep(s.Status) })],
        Children = job.Children is null ? null : [.. job.Children.Select(c => c with { Status = ForJob(c.Status) })],
        Retries = job.Retries is null ? null : [.. job.Retries.Select(r => r with { Status = ForJob(r.Status) })],
    };

    /// <summary>Waiting for approval has not started yet; a cancelled job did not succeed, and it is over.</summary>
    public static string ForJob(string status) => status switch
    {
        JobStatus.Pending or JobStatus.WaitingApproval => Pending,
        JobStatus.Running => Running,
        JobStatus.Succeeded => Success,
        JobStatus.Failed or JobStatus.Cancelled => Failed,
        _ => status,
    };

    /// <summary>A skipped step is one a cancel or the job's timeout stopped: it did not succeed.</summary>
    public static string ForStep(string status) => status switch
    {
        StepStatus.Pending => Pending,
        StepStatus.Running => Running,
        StepStatus.Succeeded => Success,
        StepStatus.Failed or StepStatus.Skipped => Failed,
        _ => status,
    };
}
