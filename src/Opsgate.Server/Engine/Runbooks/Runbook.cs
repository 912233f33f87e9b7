using System.Text.Json.Nodes;
using Opsgate.Server.Access;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>
/// A job type: typed parameters, steps whose inputs are templates over the parameters and earlier steps' outputs,
/// and options. Loaded (and checked against the registered step kinds) by <see cref="RunbookLoader"/>.
/// One instance serves every job of its type, concurrently: its JSON trees (<see cref="RunbookStep.With"/>, defaults)
/// are read-only by convention; <see cref="Templates.Render"/> and <see cref="ParameterBinder.Bind"/> return new trees.
/// </summary>
/// <param name="Source">Where it came from, for messages and listings: <c>built-in/NAME.yaml</c> or a file path.</param>
internal sealed record Runbook(
    string Name,
    string? Description,
    IReadOnlyList<RunbookParameter> Parameters,
    IReadOnlyList<RunbookStep> Steps,
    RunbookOptions Options,
    string Source)
{
    public RunbookParameter? Parameter(string name) => Parameters.FirstOrDefault(p => p.Name == name);
}

/// <summary>Object: a JSON object passed through as is (Ansible extra vars).</summary>
/// <summary><c>Any</c>: any JSON value, checked by the step that takes it (e.g. <c>shards</c>: a number or <c>"auto"</c>).</summary>
internal enum ParameterType { String, Int, Bool, Enum, Object, Any }

/// <param name="Default">Used when the parameter is not given; its JSON type matches <paramref name="Type"/>.</param>
/// <param name="Values">The allowed values of an enum.</param>
/// <param name="Min">Lowest allowed int (inclusive).</param>
/// <param name="Max">Highest allowed int (inclusive).</param>
/// <param name="Pattern">For strings: <c>dns-label</c>, <c>dns-subdomain</c>, or a regular expression the whole value must match.</param>
internal sealed record RunbookParameter(
    string Name,
    ParameterType Type,
    bool Required,
    JsonNode? Default,
    IReadOnlyList<string>? Values,
    long? Min,
    long? Max,
    string? Pattern,
    string? Description)
{
    /// <summary>The value is kept in the secret store, not with the job, and shown as [REDACTED] everywhere (see <see cref="JobSecrets"/>).</summary>
    public bool Secret { get; init; }
}

/// <param name="With">The step's inputs, possibly holding <c>{{ ... }}</c> templates; rendered by <see cref="Templates.Render"/>.</param>
/// <param name="Attempts">How many times the step runs before the job fails (1 = no retry).</param>
/// <param name="Backoff">Wait before the second attempt; the engine decides how it grows.</param>
/// <param name="Timeout">Limit for one attempt; null = none.</param>
internal sealed record RunbookStep(string Name, string Kind, JsonObject With, int Attempts, TimeSpan Backoff, TimeSpan? Timeout)
{
    public const int DefaultAttempts = 1;
    public static readonly TimeSpan DefaultBackoff = TimeSpan.FromSeconds(1);
}

/// <param name="ApproversRole">The least role that may approve a job of this runbook.</param>
/// <param name="Timeout">Limit for the whole job (steps and retries, not the wait for approval); null = none.</param>
/// <param name="ConcurrencyKey">
/// A template over the parameters; two jobs whose rendered keys are equal never run at the same time
/// (two rebuilds of the same StatefulSet). Null = no limit.
/// </param>
/// <param name="ApprovalTimeout">How long a job may wait for approval before it is given up; null = forever.</param>
internal sealed record RunbookOptions(
    bool RequiresApproval,
    Role ApproversRole,
    TimeSpan? Timeout,
    string? ConcurrencyKey,
    TimeSpan? ApprovalTimeout)
{
    public static readonly RunbookOptions Default = new(false, Role.Approver, null, null, null);
}

/// <summary>A runbook that cannot be loaded; the message is <c>SOURCE line N: PROBLEM</c>.</summary>
internal sealed class RunbookException(string source, long? line, string problem)
    : Exception(line is null ? $"{source}: {problem}" : $"{source} line {line}: {problem}")
{
    public string RunbookSource { get; } = source;
    public long? Line { get; } = line;
    public string Problem { get; } = problem;
}

/// <summary>A job's parameters or a step's rendered inputs are not acceptable. <see cref="Field"/> is like <c>params.ordinal</c> or <c>steps.delete_pvc.name</c>.</summary>
internal sealed class ParameterException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
