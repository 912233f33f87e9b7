using System.Text.Json.Nodes;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible;

/// <summary><c>ansible.run</c> with <c>shards</c>: what is refused at submit, and the parent's step (see <see cref="ShardedRun"/>).</summary>
internal sealed partial class AnsibleRunStep
{
    /// <summary>
    /// Refused at submit (400): a bad shards value, shards with limit, or a playbook that must not be sharded (a
    /// playbook from a project is read when the run has pinned its commit; see <see cref="ExecuteShardedAsync"/>).
    /// </summary>
    private async Task<(string Input, string Message)?> CheckShardingAsync(JsonObject inputs, CancellationToken ct)
    {
        int? requested;
        try
        {
            requested = Sharding.Requested(inputs["shards"]);
        }
        catch (FormatException e)
        {
            return ("shards", e.Message);
        }
        if (requested is null)
            return null;
        if (!string.IsNullOrEmpty(inputs["limit"]?.GetValue<string>()))
            return ("shards", "cannot be combined with limit yet: give an inventory of just those hosts, or run with shards: 1");
        string? why = null;
        if (inputs["playbook_yaml"]?.GetValue<string>() is { } yaml)
            why = ShardableCheck.Refusal(yaml);
        else if (inputs["project"] is null && inputs["playbook"]?.GetValue<string>() is { } path)
        {
            try
            {
                var file = ResolvePlaybook(path, options.Value.PlaybookDirectory);
                why = ShardableCheck.Refusal(await File.ReadAllTextAsync(file, ct), file, options.Value.PlaybookDirectory);
            }
            catch (Exception e) when (e is StepFailedException or IOException or UnauthorizedAccessException)
            {
                // A playbook that does not resolve or cannot be read here fails the run with the reason, as without shards.
            }
        }
        return why is not null ? ("shards", $"the playbook cannot be sharded: {why}; run it with shards: 1") : null;
    }

    /// <summary>
    /// The parent of a sharded run: child jobs run the shards (see <see cref="ShardedRun"/>); the result reads like one
    /// run's. The figures are the shards' host rows, as <c>/hosts</c> sums them; the exit code is the one ansible gives
    /// a single run, from the shards' own exit codes (see <see cref="Sharding.ExitCode"/>); the run is complete when
    /// every shard got to ansible's stats. A shard that failed for another reason (its timeout, fail_fast, cancelled)
    /// is named with its error.
    /// </summary>
    private async Task<StepOutcome> ExecuteShardedAsync(StepContext context, int shards, bool check, TimeSpan timeout, CancellationToken ct)
    {
        var passOn = new JsonObject();
        foreach (var name in new[] { "playbook", "playbook_yaml", "credential", "extra_vars", "diff", "forks", "tags", "timeout" })
            passOn[name] = context.Inputs[name]?.DeepClone();
        passOn["check"] = check;
        passOn["project"] = passOn["project_commit"] = null; // every parameter of ansible-shard is present, null when not given
        (ProjectInfo Project, string Commit)? source = null;
        if (context.OptionalString("project") is { } project)
        {
            // The parent pins the commit once; every shard runs exactly that commit, wherever the branch moves meanwhile.
            var (path, found, commit, checkout) = await PlaybookFromProjectAsync(context, project,
                context.OptionalString("playbook") ?? throw new StepFailedException("give playbook: the path of the playbook in the project"), ct);
            if (ShardableCheck.Refusal(await File.ReadAllTextAsync(path, ct), path, checkout) is { } why)
                throw new StepFailedException($"the playbook cannot be sharded: {why}; run it with shards: 1");
            source = (found, commit);
            passOn["project"] = found.Name;
            passOn["project_commit"] = commit;
        }
        var (inventory, used, expanded, secretName) = await InventoryAsync(context, ct);
        var request = new ShardRequest(shards, context.Bool("fail_fast"), inventory, expanded, secretName, passOn, timeout);
        var run = await sharded.RunAsync(context, request, ct);

        var hosts = run.Hosts;
        var failed = hosts.Where(h => h.Value.Failed > 0).Select(h => h.Key).ToList();
        var unreachable = hosts.Where(h => h.Value.Unreachable > 0).Select(h => h.Key).ToList();
        var changed = hosts.Count(h => h.Value.Changed > 0);
        var exitCode = Sharding.ExitCode(run.Shards.Select(s => s.ExitCode));
        var outputs = new JsonObject
        {
            ["exit_code"] = exitCode,
            ["hosts"] = hosts.Count,
            ["changed_hosts"] = changed,
            ["failed_hosts"] = new JsonArray([.. failed.Select(h => (JsonNode)h)]),
            ["unreachable_hosts"] = new JsonArray([.. unreachable.Select(h => (JsonNode)h)]),
            ["complete"] = run.Complete,
            ["check"] = check,
            ["shards"] = new JsonArray([.. run.Shards.Select(s => (JsonNode)new JsonObject
            {
                ["shard"] = s.Job.ShardIndex, ["job_id"] = s.Job.Id, ["hosts"] = s.Job.ShardHosts, ["status"] = s.Job.Status,
                ["exit_code"] = s.ExitCode, ["complete"] = s.Complete,
            })]),
        };
        RecordSources(outputs, used, source);
        var summary = new NewEvent("ansible.summary", context.StepOrder, outputs.DeepClone().AsObject());
        summary.Data!["step"] = context.StepName;
        if (!await store.AppendAsync(context.JobId, context.Owner, [summary], CancellationToken.None))
            throw new InvalidOperationException("the job's lease was lost during the sharded run; another worker owns the job now");

        var mode = check ? "check mode: " : "";
        if (exitCode == 0 && run.Complete)
            return new StepOutcome($"{mode}playbook ran on {hosts.Count} hosts in {run.Shards.Count} shards, {changed} changed", outputs);
        var parts = HostFailures(hosts, failed, unreachable);
        // Shards whose end their hosts' failures do not explain: an error, a timeout, a cancel, fail_fast.
        foreach (var shard in run.Shards.Where(s => s.ExitCode is not (0 or 2 or 4) || !s.Complete))
            parts.Add($"shard {shard.Job.ShardIndex} (job {shard.Job.Id}) {shard.Job.Status}: {shard.Job.Error}");
        var notOk = run.Shards.Count(s => s.Job.Status != JobStatus.Succeeded);
        throw new StepFailedException($"{mode}{string.Join("; ", parts.DefaultIfEmpty("hosts failed"))} (exit code {exitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}; {notOk} of {run.Shards.Count} shards did not succeed)")
        {
            Outputs = outputs,
        };
    }
}
