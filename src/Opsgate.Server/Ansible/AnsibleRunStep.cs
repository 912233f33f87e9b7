using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Persistence;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible;

/// <summary>
/// <c>ansible.run</c>: runs a playbook over an inventory with <c>ansible-playbook</c>. Every task result per host is on
/// the job's event stream as it happens (<c>ansible.*</c> events, in batches); per-host results are kept in
/// <c>job_hosts</c> (<c>GET /api/v1/jobs/{id}/hosts</c>), also for a run that was stopped. In a dry run the playbook runs
/// in check mode. A re-run after a crash runs the playbook again: playbooks are expected to be idempotent, as Ansible's are.
/// The inventory is a stored one (<c>inventory</c>: id or name; the version that was latest when the job was submitted,
/// or <c>inventory_version</c>) or inline YAML (<c>inventory_yaml</c>, for custom runbooks).
/// </summary>
internal sealed partial class AnsibleRunStep(
    AnsibleProcess runner, AnsibleResults results, InventoryStore inventories, JobStore jobs, IOptions<AnsibleOptions> options,
    ProjectStore projects, ProjectCache cache, CredentialStore credentials) : IStepExecutor
{
    public const int MaxForks = 500;

    public string Kind => "ansible.run";
    public string Description => "Run an Ansible playbook over an inventory; per-host results and live events.";
    public IReadOnlyList<StepInput> Inputs { get; } =
    [
        new("playbook", InputType.String, false, "path of the playbook in the project, or under Ansible:PlaybookDirectory without a project (or give playbook_yaml)"),
        new("project", InputType.String, false, "project (id or name) whose checkout holds the playbook; the run records the commit it used"),
        new("credential", InputType.String, false, "ssh_key credential the run reaches its machines with (--private-key, and --user when it has a username)"),
        new("playbook_yaml", InputType.String, false, "the playbook itself, as YAML text"),
        new("inventory", InputType.String, false, "a stored inventory: its id or name (or give inventory_yaml)"),
        new("inventory_version", InputType.String, false, "version of the stored inventory (default: the latest when the job was submitted)"),
        new("inventory_yaml", InputType.String, false, "an inline Ansible YAML inventory (groups, children, host ranges, vars)"),
        new("limit", InputType.String, false, "ansible-playbook --limit pattern"),
        new("extra_vars", InputType.Object, false, "extra variables (-e), passed in a private file"),
        new("check", InputType.Bool, false, "check mode: report what would change, change nothing"),
        new("diff", InputType.Bool, false, "show differences of changed files and templates"),
        new("forks", InputType.Int, false, $"parallel hosts, 1..{MaxForks} (ansible's default: 5)"),
        new("tags", InputType.String, false, "only tasks with these tags (comma-separated)"),
        new("timeout", InputType.Duration, false, "limit for the run; at most Ansible:RunTimeout"),
    ];

    public async Task<(string Input, string Message)?> CheckReferencesAsync(JsonObject inputs, CancellationToken ct) =>
        await CheckProjectAsync(inputs, ct) ?? await CheckInventoryAsync(inputs, ct);

    private async Task<(string Input, string Message)?> CheckInventoryAsync(JsonObject inputs, CancellationToken ct)
    {
        var reference = inputs["inventory"]?.GetValue<string>();
        var inline = inputs["inventory_yaml"]?.GetValue<string>();
        if ((reference is null) == (inline is null))
            return ("inventory", "give inventory (a stored inventory's id or name) or inventory_yaml (inline YAML), exactly one of them");
        if (reference is null)
            return null;
        var version = inputs["inventory_version"]?.GetValue<string>();
        if (!InventoryRef.TryParse(reference, out var parsed))
            return ("inventory", $"'{Truncate(reference)}' {InventoryNames.ReferenceRule}");
        if (version is not null && !InventoryNames.IsValidVersion(version))
            return ("inventory_version", InventoryNames.VersionRule);
        if (await inventories.FindAsync(parsed, version, ct) is null)
            return version is null ? ("inventory", $"inventory '{parsed}' does not exist") : ("inventory_version", $"inventory '{parsed}' has no version '{version}'");
        return null;
    }

    public async Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var forks = context.Inputs["forks"] is null ? (int?)null : context.Int("forks");
        if (forks is < 1 or > MaxForks)
            throw new StepFailedException($"forks must be between 1 and {MaxForks}, not {forks}");
        var timeout = context.OptionalString("timeout") is { } t ? Durations.Parse(t) : o.RunTimeout;
        if (timeout > o.RunTimeout)
            timeout = o.RunTimeout;
        var check = context.Bool("check") || context.DryRun;

        var playbookDir = context.OptionalString("playbook_yaml") is { } inline ? Directory.CreateTempSubdirectory("opsgate-playbook-") : null;
        try
        {
            string playbook;
            (ProjectInfo Project, string Commit)? source = null;
            if (playbookDir is not null)
            {
                if (context.OptionalString("playbook") is not null)
                    throw new StepFailedException("give playbook or playbook_yaml, not both");
                if (context.OptionalString("project") is not null)
                    throw new StepFailedException("a run from a project takes playbook (a path in the project), not playbook_yaml");
                playbook = Path.Combine(playbookDir.FullName, "playbook.yml");
                await File.WriteAllTextAsync(playbook, context.String("playbook_yaml"), cancellationToken);
            }
            else if (context.OptionalString("project") is { } project)
            {
                var (path, found, commit) = await PlaybookFromProjectAsync(context, project,
                    context.OptionalString("playbook") ?? throw new StepFailedException("give playbook: the path of the playbook in the project"), cancellationToken);
                (playbook, source) = (path, (found, commit));
            }
            else
            {
                playbook = ResolvePlaybook(context.OptionalString("playbook") ?? throw new StepFailedException("give playbook (a path under Ansible:PlaybookDirectory) or playbook_yaml"), o.PlaybookDirectory);
            }

            var (inventory, used) = await InventoryAsync(context, cancellationToken);
            var request = new AnsibleRunRequest(context.JobId, context.Owner, context.StepOrder, context.StepName, playbook, inventory,
                context.OptionalString("limit"), context.Inputs["extra_vars"]?.AsObject(), check, context.Bool("diff"), forks, context.OptionalString("tags"), timeout,
                await MachineCredentialAsync(context, cancellationToken));
            var run = await runner.RunAsync(request, cancellationToken);
            return await ConcludeAsync(context, run, check, timeout, used, source);
        }
        finally
        {
            playbookDir?.Delete(recursive: true);
        }
    }

    /// <summary>The inventory YAML for ansible, and which stored inventory version it is (null for inline YAML).</summary>
    private async Task<(string Yaml, JsonObject? Used)> InventoryAsync(StepContext context, CancellationToken ct)
    {
        if (context.OptionalString("inventory_yaml") is { } inline)
        {
            if (context.OptionalString("inventory") is not null)
                throw new StepFailedException("give inventory or inventory_yaml, not both");
            return (inline, null);
        }
        var reference = context.OptionalString("inventory") ?? throw new StepFailedException("give inventory (a stored inventory's id or name) or inventory_yaml");
        if (!InventoryRef.TryParse(reference, out var parsed))
            throw new StepFailedException($"inventory '{Truncate(reference)}' {InventoryNames.ReferenceRule}");
        var version = context.OptionalString("inventory_version");
        // Without a version, the one that was latest when the job was submitted: a version added while the job waited
        // (for approval, for a worker) does not change what was asked for.
        // (Replicas' clocks may differ a little: when nothing is that old, the latest.)
        var submitted = (await jobs.GetAsync(context.JobId, ct))?.Job.CreatedAt.AsUtc();
        var found = await inventories.ResolveAsync(parsed, version, ct, asOf: version is null ? submitted : null)
            ?? await inventories.ResolveAsync(parsed, version, ct)
            ?? throw new StepFailedException(version is null ? $"inventory '{parsed}' does not exist (any more)" : $"inventory '{parsed}' has no version '{version}'");
        var v = found.Version;
        return (found.Yaml, new JsonObject { ["id"] = v.Id, ["name"] = v.Name, ["version"] = v.Version, ["hosts"] = v.HostCount });
    }

    private static string Truncate(string s) => s.Length <= 63 ? s : s[..63] + "...";

    private static string FirstFailure(HostResult host)
    {
        var first = host.Failures.FirstOrDefault(f => f["kind"]?.GetValue<string>() == "failed") ?? host.Failures.FirstOrDefault();
        var message = first?["message"]?.GetValue<string>() ?? "(no message)";
        if (message.Length > 300)
            message = message[..300] + "...";
        return $"task '{first?["task"]?.GetValue<string>()}': {message}";
    }

    /// <summary>A path under <paramref name="root"/> (the playbook directory, or a project's checkout); anything that would leave it (<c>..</c>, an absolute path, a symbolic link) is refused.</summary>
    internal static string ResolvePlaybook(string relative, string? root, string where = "the playbook directory")
    {
        if (string.IsNullOrWhiteSpace(root))
            throw new StepFailedException("playbook paths need Ansible:PlaybookDirectory to be set, or a project; give playbook_yaml instead");
        return ProjectPaths.Resolve(root, relative, directoryAllowed: false, out var full) switch
        {
            PathProblem.None => full,
            PathProblem.Outside => throw new StepFailedException($"playbook '{relative}' is outside {where}"),
            _ => throw new StepFailedException($"playbook '{relative}' does not exist in {where}"),
        };
    }

    private async Task<StepOutcome> ConcludeAsync(
        StepContext context, AnsibleRunResult run, bool check, TimeSpan timeout, JsonObject? inventory, (ProjectInfo Project, string Commit)? source)
    {
        var hosts = run.Hosts.Hosts;
        var failed = hosts.Where(h => h.Value.Failed > 0).Select(h => h.Key).ToList();
        var unreachable = hosts.Where(h => h.Value.Unreachable > 0).Select(h => h.Key).ToList();
        var changed = hosts.Count(h => h.Value.Changed > 0);
        var outputs = new JsonObject
        {
            ["exit_code"] = run.ExitCode,
            ["hosts"] = hosts.Count,
            ["changed_hosts"] = changed,
            ["failed_hosts"] = new JsonArray([.. failed.Select(h => (JsonNode)h)]),
            ["unreachable_hosts"] = new JsonArray([.. unreachable.Select(h => (JsonNode)h)]),
            ["complete"] = run.Hosts.Complete,
            ["check"] = check,
        };
        if (inventory is not null)
            outputs["inventory"] = inventory;
        if (source is { } from)
        {
            outputs["project"] = from.Project.Name;
            outputs["project_commit"] = from.Commit;
        }
        var summary = new NewEvent("ansible.summary", context.StepOrder, outputs.DeepClone().AsObject());
        summary.Data!["step"] = context.StepName;
        summary.Data["stopped"] = run.Stopped?.ToString().ToLowerInvariant();
        if (run.LeaseLost || !await results.SaveAsync(context.JobId, context.Owner, context.StepOrder, run.Hosts, [summary], CancellationToken.None))
            throw new InvalidOperationException("the job's lease was lost during the playbook run; another worker owns the job now");

        switch (run.Stopped)
        {
            case AnsibleStop.Cancelled:
                throw new OperationCanceledException("the playbook run was stopped");
            case AnsibleStop.TimedOut:
                throw new StepFailedException($"ansible-playbook did not finish within {timeout} and was stopped");
        }
        var mode = check ? "check mode: " : "";
        var hostList = (IReadOnlyList<string> names) => string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" and {names.Count - 10} more" : "");
        switch (run.ExitCode)
        {
            case 0:
                return new StepOutcome($"{mode}playbook ran on {hosts.Count} hosts, {changed} changed", outputs);
            case 2 or 4 or 6 when run.Hosts.Complete:
                var parts = new List<string>();
                if (failed.Count > 0)
                    parts.Add($"{failed.Count} of {hosts.Count} hosts failed ({hostList(failed)}); first failure: {FirstFailure(hosts[failed[0]])}");
                if (unreachable.Count > 0)
                    parts.Add($"{unreachable.Count} of {hosts.Count} hosts unreachable ({hostList(unreachable)})");
                throw new StepFailedException($"{mode}{string.Join("; ", parts.DefaultIfEmpty("hosts failed"))} (ansible-playbook exit code {run.ExitCode})");
            case 99:
                throw new StepFailedException("ansible-playbook was interrupted (exit code 99)");
            default:
                var why = run.StderrTail.Length == 0 ? "" : ": " + run.StderrTail;
                throw new StepFailedException($"ansible-playbook failed with exit code {run.ExitCode}{why}");
        }
    }
}
