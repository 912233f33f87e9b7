using System.Text.Json.Nodes;

namespace Opsgate.Server.Engine.Steps;

/// <summary>Everything a step executor gets: its rendered inputs, the job it belongs to, and a way to report progress.</summary>
/// <param name="owner">The worker holding the job's lease: steps that write to the job themselves guard each write with it.</param>
internal sealed class StepContext(string jobId, string owner, string stepName, int stepOrder, int attempt, bool dryRun, JsonObject inputs, Func<string, JsonObject?, Task> progress)
{
    public string JobId { get; } = jobId;
    public string Owner { get; } = owner;
    public string StepName { get; } = stepName;
    public int StepOrder { get; } = stepOrder;
    /// <summary>1 on the first try; higher on retries and after a resume.</summary>
    public int Attempt { get; } = attempt;
    public bool DryRun { get; } = dryRun;
    /// <summary>The rendered inputs as JSON (a step kind reads them bound to its record, see <see cref="StepExecutor{TInputs}"/>).</summary>
    public JsonObject Inputs { get; } = inputs;

    /// <summary>The job's secret values: a step that records what it runs itself (Ansible's events) masks them there (see <see cref="JobSecrets.Mask(string?, IReadOnlyList{string})"/>).</summary>
    public IReadOnlyList<string> Secrets { get; init; } = [];

    /// <summary>Records a progress event on the job's event stream (and the step's detail). One call at a time: await each before the next.</summary>
    public Task ProgressAsync(string detail, JsonObject? data = null) => progress(detail, data);
}
