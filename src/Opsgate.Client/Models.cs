using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Opsgate.Client;

// The server's JSON shapes (snake_case on the wire), as much of them as a client reads. (System.Text.Json refuses
// [JsonExtensionData] on these positional records, so fields a newer server adds are not carried through.)

public sealed record Cluster(
    string Name, string Server, string? Context, IReadOnlyList<string> AllowedNamespaces, string Source, DateTime? CreatedAt, string? CreatedBy,
    string Status, string? ServerVersion, DateTime? LastChecked, string? Message, LatestExecution? LatestExecution)
{
}

public sealed record LatestExecution(string Action, string? Namespace, string? ResourceName, string Status, string? Actor, bool DryRun, DateTime At);

public sealed record ClusterList(IReadOnlyList<Cluster> Items);

public sealed record ClusterStatusList(IReadOnlyList<Cluster> Clusters);

public sealed record Runbook(
    string Name, string? Description, bool RequiresApproval, string ApproversRole, string? Timeout,
    IReadOnlyList<RunbookParameter> Parameters, IReadOnlyList<RunbookStep> Steps, string Source)
{
}

/// <summary>A runbook parameter's schema: <see cref="Type"/> is string, int, bool, enum or object.</summary>
public sealed record RunbookParameter(
    string Name, string Type, bool Required, JsonNode? Default, IReadOnlyList<string>? Values, long? Min, long? Max, string? Pattern, string? Description, bool Secret);

public sealed record RunbookStep(string Name, string Kind);

public sealed record JobStep(string Name, int Order, string Kind, string Status, string? Detail, int Attempts, DateTime? StartedAt, DateTime? FinishedAt, JsonNode? Output);

public sealed record Job(
    string JobId, string Type, string Status, JsonObject Params, bool DryRun, string? Actor, string? SourceIp, DateTime CreatedAt,
    DateTime? StartedAt, DateTime? FinishedAt, int Attempt, string? PendingReason, string? Error, string? DecidedBy, string? DecisionComment,
    DateTime? ApprovalExpiresAt, bool CancelRequested, IReadOnlyList<JobStep>? Steps)
{
    public string? ParentId { get; init; }
    public int? ShardIndex { get; init; }
    public string? RetryOf { get; init; }

    /// <summary>succeeded, failed or cancelled: nothing more will happen to it.</summary>
    [JsonIgnore]
    public bool IsFinished => JobStatuses.IsFinished(Status);
}

public static class JobStatuses
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsFinished(string status) => status is Succeeded or Failed or Cancelled;
}

public sealed record JobPage(IReadOnlyList<Job> Items, string? NextCursor);

/// <summary>What cancel, retry, approve and reject answer.</summary>
public sealed record JobCommandResult(string JobId, string Status);

public sealed record AuditVerification(bool Ok, long Entries, long? FirstBadId, string? Reason);

/// <summary>One event of a job's stream: <see cref="Seq"/> numbers them from 1 without gaps.</summary>
public sealed record JobEvent(long Seq, DateTime Ts, string Type, int? StepOrder, JsonObject? Data);

/// <summary>Filters and paging of GET /api/v1/jobs.</summary>
public sealed record JobQuery(string? Status = null, string? Type = null, int? Limit = null, string? Cursor = null);

internal sealed record SubmitJobBody(string Type, JsonObject Params, bool DryRun);

internal sealed record DecisionBody(string? Comment);

internal sealed record RetryBody(string? Hosts);

/// <summary>The problem+json body of an error answer.</summary>
internal sealed record ProblemBody(string? Type, string? Title, int? Status, string? Detail, Dictionary<string, string[]>? Errors, string? RequestId);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never, WriteIndented = false)]
[JsonSerializable(typeof(ClusterList))]
[JsonSerializable(typeof(ClusterStatusList))]
[JsonSerializable(typeof(Cluster))]
[JsonSerializable(typeof(IReadOnlyList<Runbook>))]
[JsonSerializable(typeof(Job))]
[JsonSerializable(typeof(JobPage))]
[JsonSerializable(typeof(JobCommandResult))]
[JsonSerializable(typeof(AuditVerification))]
[JsonSerializable(typeof(JobEvent))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(JsonNode))]
public sealed partial class OpsgateJson : JsonSerializerContext;

/// <summary>The request bodies and problem+json, which only the client itself reads or writes.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SubmitJobBody))]
[JsonSerializable(typeof(DecisionBody))]
[JsonSerializable(typeof(RetryBody))]
[JsonSerializable(typeof(ProblemBody))]
internal sealed partial class WireJson : JsonSerializerContext;
