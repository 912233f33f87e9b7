using System.Security.Cryptography;

using Opsgate.Server.Audit;

namespace Opsgate.Server.Engine;

internal static class JobStatus
{
    public const string Pending = "pending";
    public const string WaitingApproval = "waiting_approval";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsFinished(string status) => status is Succeeded or Failed or Cancelled;

    // Every legal move, in one place. A crashed worker's job stays "running" until its lease expires and
    // another worker claims it: that is running -> running with a new owner, not a state change.
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        [Pending] = [Running, Cancelled],
        [WaitingApproval] = [Pending, Cancelled],
        [Running] = [Succeeded, Failed, Cancelled],
        [Failed] = [Pending],
        [Succeeded] = [],
        [Cancelled] = [],
    };

    public static bool CanMove(string from, string to) => Allowed.TryGetValue(from, out var next) && next.Contains(to);

    /// <summary>Throws when <paramref name="from"/> → <paramref name="to"/> is not a legal move.</summary>
    public static void EnsureCanMove(string from, string to)
    {
        if (!CanMove(from, to))
            throw new IllegalTransitionException($"a {from} job cannot become {to}");
    }
}

internal static class StepStatus
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Skipped = "skipped";

    public static bool IsDone(string status) => status is Succeeded or Skipped;
}

internal sealed class IllegalTransitionException(string message) : Exception(message);

internal sealed class JobRow
{
    public string Id { get; set; } = "";
    public string Type { get; set; } = "";
    public string Status { get; set; } = "";
    public string Params { get; set; } = "{}";
    public bool DryRun { get; set; }
    public string? Actor { get; set; }
    public string? PrincipalId { get; set; }
    public string? SourceIp { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public int Attempt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTime? LeaseExpiresAt { get; set; }
    public string? ConcurrencyKey { get; set; }
    public bool CancelRequested { get; set; }
    public string? CancelRequestedBy { get; set; }
    public DateTime? DeadlineAt { get; set; }
    public DateTime? ApprovalExpiresAt { get; set; }
    public string? DecidedBy { get; set; }
    public string? DecisionComment { get; set; }
    public string? Error { get; set; }
    public long LastSeq { get; set; }
    /// <summary>Set on a child job (a shard of a sharded Ansible run): the job that waits for it.</summary>
    public string? ParentId { get; set; }
    public int? ShardIndex { get; set; }
    public int? ShardRound { get; set; }
    public int? ShardHosts { get; set; }
    /// <summary>A child's last event seq already relayed into its parent's stream.</summary>
    public long RelayedSeq { get; set; }

    /// <summary>Events up to this seq were deleted by the event retention (null: none were).</summary>
    public long? EventsPrunedSeq { get; set; }
    public DateTime? EventsPrunedAt { get; set; }

    /// <summary>Its targets are recorded (false only for jobs from before Opsgate recorded them: see migration 0013).</summary>
    public bool Scoped { get; set; }
    /// <summary>JSON arrays of the submitter's and the approver's namespace allowlists (null: none); see <see cref="JobScope"/>.</summary>
    public string? SubmitterNamespaces { get; set; }
    public string? ApproverNamespaces { get; set; }

    /// <summary>A retry on failed hosts: the job it was made from (see <c>Ansible/FailedHostsRetry.cs</c>).</summary>
    public string? RetryOf { get; set; }

    /// <summary>The W3C traceparent of the span that queued the job (see <see cref="JobTracing"/>); null when there was none.</summary>
    public string? TraceParent { get; set; }
}

internal sealed class StepRow
{
    public string JobId { get; set; } = "";
    public int StepOrder { get; set; }
    public string Name { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Status { get; set; } = "";
    public string? Detail { get; set; }
    public int Attempts { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public string? Output { get; set; }

    /// <summary>The step as it is now, for a write that happens later while the runner goes on changing this one.</summary>
    public StepRow Snapshot() => (StepRow)MemberwiseClone();
}

internal sealed class JobEventRow
{
    public string JobId { get; set; } = "";
    public long Seq { get; set; }
    public DateTime Ts { get; set; }
    public string Type { get; set; } = "";
    public int? StepOrder { get; set; }
    public string? Data { get; set; }
}

/// <summary>Job ids: ULIDs in lower case — 48 bits of milliseconds then 80 random bits, so they sort by creation and are safe in URLs.</summary>
internal static class JobIds
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32

    public static string New(DateTimeOffset now)
    {
        Span<byte> bytes = stackalloc byte[16];
        var ms = (ulong)now.ToUnixTimeMilliseconds();
        for (var i = 5; i >= 0; i--)
        {
            bytes[i] = (byte)(ms & 0xff);
            ms >>= 8;
        }
        RandomNumberGenerator.Fill(bytes[6..]);
        var value = new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
        Span<char> chars = stackalloc char[26];
        for (var i = 25; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
        return new string(chars);
    }

    public static bool IsValid(string? id) => id is { Length: 26 } && id.All(c => Alphabet.Contains(c, StringComparison.Ordinal));
}

/// <summary>Audit entries of the engine's own changes (job and step starts and finishes), written by the system principal.</summary>
internal static class JobAudit
{
    /// <summary>The audit entry of an engine change; the store commits it with the change itself.</summary>
    public static AuditEntry Entry(JobRow job, string action, string status, string? error, StepRow? step = null) =>
        new()
        {
            Actor = "opsgate",
            Action = action,
            ResourceKind = step is null ? "job" : "job_step",
            ResourceName = step is null ? job.Id : $"{job.Id}/{step.StepOrder}-{step.Name}",
            Status = status,
            ErrorMessage = error,
            PrincipalId = "system:engine",
            AuthMethod = "system",
            DryRun = job.DryRun,
            JobId = job.Id,
        };
}
