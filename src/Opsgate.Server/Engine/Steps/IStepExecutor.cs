using System.Text.Json.Nodes;
using Opsgate.Server.Access;

namespace Opsgate.Server.Engine.Steps;

/// <summary>The type of a step input, checked when a job is submitted (after parameters are filled in).</summary>
internal enum InputType { String, Int, Bool, Duration, Object, Array, Any }

/// <summary>One input a step kind takes (the keys of a runbook step's <c>with:</c>).</summary>
internal sealed record StepInput(string Name, InputType Type, bool Required, string Description);

/// <summary>The names of the inputs that say where a step acts (see <see cref="IStepExecutor.Target"/>).</summary>
internal sealed record StepTarget(string ClusterInput, string NamespaceInput);

/// <summary>What a step produced: a one-line detail for people, and outputs later steps can use as <c>{{ steps.NAME.outputs.KEY }}</c>.</summary>
internal sealed record StepOutcome(string Detail, JsonObject? Outputs = null);

/// <summary>
/// A named step kind (<c>k8s.scale</c>, <c>http.call</c>, ...). Executors are registered in DI and looked up by
/// <see cref="Kind"/>; a runbook naming an unknown kind, or an input the kind does not take, is refused when the
/// runbook loads. Steps must be idempotent: after a crash the step that was running is run again and must converge
/// (unless the kind says it is not, see <see cref="NotResumable"/>).
/// </summary>
internal interface IStepExecutor
{
    string Kind { get; }

    string Description { get; }

    IReadOnlyList<StepInput> Inputs { get; }

    /// <summary>
    /// The inputs that name the cluster and the namespace a step of this kind acts on; null (the default) when it acts on
    /// no namespace. The job engine checks them against the cluster's and the job's principals' namespace allowlists: at
    /// submit when they are known then, and before every run of the step (see <see cref="JobScope"/>).
    /// </summary>
    StepTarget? Target => null;

    /// <summary>
    /// Checks, when a job is submitted (after <see cref="CheckUseAsync"/>), what the rendered inputs refer to (a stored
    /// inventory, a project and the playbook in it), so a dangling reference is a 400 and never a failed job. Null when
    /// all is well, else the input and why.
    /// </summary>
    Task<(string Input, string Message)?> CheckReferencesAsync(JsonObject inputs, CancellationToken ct) => Task.FromResult<(string, string)?>(null);

    /// <summary>
    /// Checks, when a job is submitted (before <see cref="CheckReferencesAsync"/>), that <paramref name="principal"/> may
    /// use what the rendered inputs name (a credential). Null when it may, else a refusal naming the thing: a 403. A
    /// name that does not exist is not refused here: <see cref="CheckReferencesAsync"/> answers it.
    /// </summary>
    Task<string?> CheckUseAsync(JsonObject inputs, Principal principal, CancellationToken ct) => Task.FromResult<string?>(null);

    /// <summary>
    /// Null (the default): a step of this kind (with these rendered inputs) is resumable, and one found running when a
    /// job resumes after a crash runs again. Otherwise it must not be re-run on its own (a playbook run may not be safe
    /// to run twice, and part of it already ran): such a step fails with this message instead, and a person can retry
    /// the job.
    /// </summary>
    string? NotResumable(JsonObject inputs) => null;

    /// <summary>
    /// True when a step of this kind writes to its job itself while it runs (events, results), beyond what it reports
    /// through <see cref="StepContext.ProgressAsync"/>. Its start is then written before it runs, so those writes come
    /// after it; otherwise the start of a resumable step is held back briefly to be written with its end (see
    /// <see cref="HeldStepStart"/>).
    /// </summary>
    bool RecordsItself => false;

    /// <summary>True when a step of this kind may create child jobs (shards); only such a job's finish looks for children still going, to stop them.</summary>
    bool StartsChildJobs => false;

    /// <summary>Runs the step. In a dry run it must change nothing and return what it would do.</summary>
    Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken);
}

/// <summary>
/// A step failed in a way retrying will not fix (bad input, a 4xx from a cluster): no further attempts. Outputs, when
/// given, are kept on the failed step like a succeeded step's (an Ansible run's exit code and failed hosts).
/// </summary>
internal sealed class StepFailedException(string message, Exception? inner = null) : Exception(message, inner)
{
    public JsonObject? Outputs { get; init; }
}
