using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Http;
using Opsgate.Server.Jobs;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible;

/// <summary>
/// A retry on failed hosts (AWX's "relaunch on failed hosts"): a new job of the original's runbook with its parameters,
/// limited to the hosts that failed or were unreachable in the original, on the inventory version and project commit
/// the original ran. The runbook's <c>ansible.run</c> step must take <c>limit</c>, <c>inventory_version</c> and (for a
/// project) <c>project_commit</c> from parameters, as the built-in <c>ansible-playbook</c> does; the new job is submitted
/// through <see cref="JobSubmission"/> like any other, so every submit check (namespaces, credential use, approval) applies.
/// A sharded original is retried as one run: <c>shards</c> is dropped (shards with a limit are refused at submit).
/// </summary>
internal sealed class FailedHostsRetry(
    RunbookCatalog catalog, AnsibleResults results, InventoryStore inventories, ProjectStore projects, JobSecrets secrets, JobSubmission submission)
    : IHostsRetry
{
    public const string Failed = "failed";

    public string Hosts => Failed;

    public string Description => "retry on the failed and unreachable hosts";

    public async Task<Results<Created<JobView>, ProblemHttpResult>> StartAsync(HttpContext http, JobRow original, CancellationToken ct)
    {
        var id = original.Id;
        if (original.ParentId is not null)
            return Problems.Conflict($"job {id} is shard {original.ShardIndex} of job {original.ParentId}: retry job {original.ParentId} on its failed hosts");
        if (!JobStatus.IsFinished(original.Status))
            return Problems.Conflict($"job {id} is {original.Status}: only a finished job can be retried on its failed hosts");
        if (catalog.Find(original.Type) is not { } runbook)
            return Problems.Conflict($"job {id}'s runbook '{original.Type}' does not exist any more");
        var ansibleSteps = runbook.Steps.Select((step, i) => (Step: step, Order: i + 1)).Where(s => s.Step.Kind == "ansible.run").ToList();
        if (ansibleSteps.Count != 1)
            return Problems.Invalid("hosts", $"runbook '{runbook.Name}' has {ansibleSteps.Count} ansible.run steps; a retry on failed hosts needs exactly one");
        var (step, order) = ansibleSteps[0];

        // Of a sharded original, its shards' rows: each host ran in exactly one of them.
        var hosts = (await results.ListAsync(id, ct)).Where(h => h.Failed > 0 || h.Unreachable > 0)
            .Select(h => h.Host).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (hosts.Count == 0)
            return Problems.Conflict($"job {id} has no failed or unreachable hosts");

        JsonObject parameters;
        try
        {
            (parameters, _) = await secrets.RevealAsync(original, JobJson.Params(original.Params), ct);
        }
        catch (StepFailedException e)
        {
            return Problems.Conflict(e.Message);
        }
        // A fresh tree: RevealAsync returns the one it was given when there is nothing to reveal.
        parameters = parameters.DeepClone().AsObject();

        if (Takes(runbook, step, "limit") is not { } limit)
            return Refused(runbook, step, "limit");
        parameters[limit] = string.Join(',', hosts);

        if (await PinInventoryAsync(runbook, step, original, parameters, ct) is { } inventoryProblem)
            return inventoryProblem;

        if (await projects.PinOfAsync(id, order, ct) is { } pin)
        {
            if (Takes(runbook, step, "project_commit") is not { } commit)
                return Refused(runbook, step, "project_commit");
            parameters[commit] = pin.Commit;
        }

        // One run over the failed hosts, whatever the original's shards were: a limit and shards do not go together.
        if (Takes(runbook, step, "shards") is { } shards)
            parameters.Remove(shards);

        return await JobsApi.SubmitAsync(http, submission, original.Type, parameters, original.DryRun, retryOf: id);
    }

    /// <summary>
    /// Sets the inventory version parameter to the version the original ran: the one it named, else the one that was
    /// latest when it was submitted (the rule <see cref="AnsibleRunStep"/> runs by), so a version stored since is not used.
    /// </summary>
    private async Task<ProblemHttpResult?> PinInventoryAsync(Runbook runbook, RunbookStep step, JobRow original, JsonObject parameters, CancellationToken ct)
    {
        if (Templates.UsesStepOutputs(step.With["inventory"]))
            return Problems.Invalid("hosts", $"runbook '{runbook.Name}': step '{step.Name}' takes its inventory from another step's outputs, so the version it ran cannot be known before the retry runs");
        var reference = Templates.Render(step.With["inventory"], parameters, new Dictionary<string, JsonObject>()) is JsonValue value
            && value.TryGetValue<string>(out var text) ? text : null;
        if (reference is null)
            return null; // inline inventory_yaml: the parameters carry it as it was
        if (Takes(runbook, step, "inventory_version") is not { } versionParameter)
            return Refused(runbook, step, "inventory_version");
        if (parameters[versionParameter] is JsonValue given && given.TryGetValue<string>(out var named) && named.Length > 0)
            return null;
        if (!InventoryRef.TryParse(reference, out var parsed))
            return Problems.Conflict($"job {original.Id} names inventory '{reference}', which is not an inventory id or name");
        var used = await inventories.FindAsync(parsed, null, ct, asOf: original.CreatedAt);
        if (used is null)
            return Problems.Conflict($"inventory '{parsed}' has no version from when job {original.Id} was submitted any more");
        parameters[versionParameter] = used.Version;
        return null;
    }

    /// <summary>The parameter the step's <paramref name="input"/> is exactly (<c>"{{ params.NAME }}"</c>), or null.</summary>
    private static string? Takes(Runbook runbook, RunbookStep step, string input)
    {
        if (step.With[input] is not JsonValue value || !value.TryGetValue<string>(out var text))
            return null;
        var trimmed = text.Trim();
        if (!trimmed.StartsWith("{{", StringComparison.Ordinal) || !trimmed.EndsWith("}}", StringComparison.Ordinal) || trimmed.IndexOf("{{", 2, StringComparison.Ordinal) >= 0)
            return null;
        return Templates.References(trimmed) is [{ IsStepOutput: false } reference] && runbook.Parameter(reference.Name) is not null ? reference.Name : null;
    }

    private static ProblemHttpResult Refused(Runbook runbook, RunbookStep step, string input) =>
        Problems.Invalid("hosts", $"runbook '{runbook.Name}' cannot be retried on failed hosts: its ansible.run step '{step.Name}' does not take {input} from a parameter ({input}: \"{{{{ params.{input} }}}}\")");
}
