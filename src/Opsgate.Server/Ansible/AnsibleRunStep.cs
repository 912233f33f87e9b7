using System.ComponentModel;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Credentials;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;
using Opsgate.Server.Persistence;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible;

/// <summary>
/// <c>ansible.run</c>: runs a playbook over an inventory with <c>ansible-playbook</c>. Every task result per host is on
/// the job's event stream as it happens (<c>ansible.*</c> events, in batches); per-host results are kept in
/// <c>job_hosts</c> (<c>GET /api/v1/jobs/{id}/hosts</c>), also for a run that was stopped. In a dry run the playbook runs
/// in check mode. A run the server died in is not run again: the job fails and says so (see <see cref="NotResumable"/>).
/// With <c>shards</c> the step is the parent of a sharded run (<see cref="ShardedRun"/>) and only waits for child jobs.
/// The inventory is a stored one (<c>inventory</c>: id or name; the version that was latest when the job was submitted,
/// or <c>inventory_version</c>) or inline YAML (<c>inventory_yaml</c>, for custom runbooks and shards).
/// </summary>
internal sealed partial class AnsibleRunStep(
    AnsibleProcess runner, AnsibleResults results, InventoryStore inventories, ShardedRun sharded, JobStore store, IOptions<AnsibleOptions> options,
    ProjectStore projects, ProjectCache cache, CredentialStore credentials, PrivateDirectories directories, InventorySecrets inventorySecrets)
    : StepExecutor<AnsibleRunStep.With>
{
    public const int MaxForks = 500;

    public override string Kind => "ansible.run";

    /// <remarks>
    /// A playbook half run when the server died is not run again by itself: its tasks may not be safe to repeat
    /// (a plain command, a restart). The orphaned ansible-playbook stops itself when the server's end of the event
    /// socket closes (the callback plugin), and a person retries the job (see <see cref="NotResumable"/>).
    /// </remarks>
    internal const string InterruptedRun =
        "the server stopped during the playbook run; it was not re-run automatically (a playbook may not be safe to run twice): retry the job to run it again";

    /// <summary>The inputs of a run (the descriptions' ranges are <see cref="MaxForks"/> and <see cref="Sharding.MaxShards"/>).</summary>
    internal sealed record With(
        [Description("path of the playbook in the project, or under Ansible:PlaybookDirectory without a project (or give playbook_yaml)")] string? Playbook = null,
        [Description("project (id or name) whose checkout holds the playbook; the run records the commit it used")] string? Project = null,
        [Description("ssh_key credential the run reaches its machines with (its key in an ssh-agent of the run's own, never on disk; --user when it has a username)")] string? Credential = null,
        [Description("the playbook itself, as YAML text")] string? PlaybookYaml = null,
        [Description("a stored inventory: its id or name (or give inventory_yaml)")] string? Inventory = null,
        [Description("version of the stored inventory (default: the latest when the job was submitted)")] string? InventoryVersion = null,
        [Description("an inline Ansible YAML inventory (groups, children, host ranges, vars)")] string? InventoryYaml = null,
        [Description("with inventory_yaml made from a stored inventory (a shard's): the secret holding the values its [REDACTED] placeholders stand for")] string? InventorySecrets = null,
        [Description("ansible-playbook --limit pattern")] string? Limit = null,
        [Description("extra variables (-e), passed in a private file")] JsonObject? ExtraVars = null,
        [Description("check mode: report what would change, change nothing")] bool Check = false,
        [Description("show differences of changed files and templates")] bool Diff = false,
        [Description("parallel hosts, 1..500 (ansible's default: 5)")] int? Forks = null,
        [Description("only tasks with these tags (comma-separated)")] string? Tags = null,
        [Description("limit for the run; at most Ansible:RunTimeout")] TimeSpan? Timeout = null,
        [Description("split the hosts into this many child jobs (1..64) or \"auto\"; 1 or absent: one run")] JsonNode? Shards = null,
        [Description("with shards: cancel the other shards as soon as one fails")] bool FailFast = false,
        [Description("with project: run this commit of it instead of the ref's (a sharded run hands its pinned commit to its shards)")] string? ProjectCommit = null);

    public override string Description => "Run an Ansible playbook over an inventory; per-host results and live events.";

    public override async Task<(string Input, string Message)?> CheckReferencesAsync(JsonObject inputs, CancellationToken ct) =>
        await CheckProjectAsync(inputs, ct) ?? await CheckInventoryAsync(inputs, ct) ?? await CheckShardingAsync(inputs, ct);

    private async Task<(string Input, string Message)?> CheckInventoryAsync(JsonObject inputs, CancellationToken ct)
    {
        var reference = inputs["inventory"]?.GetValue<string>();
        var inline = inputs["inventory_yaml"]?.GetValue<string>();
        if ((reference is null) == (inline is null))
            return ("inventory", "give inventory (a stored inventory's id or name) or inventory_yaml (inline YAML), exactly one of them");
        if (inputs["inventory_secrets"]?.GetValue<string>() is { } secrets && (inline is null || !InventorySecrets.IsSecretName(secrets)))
            return ("inventory_secrets", "is set by a sharded run for its shards: the name of a stored inventory version's secret, with inventory_yaml");
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

    /// <summary>Events, per-host results and (sharded) child jobs are written by the run as it goes.</summary>
    public override bool RecordsItself => true;

    /// <summary>With <c>shards</c>, the run's shards are child jobs.</summary>
    public override bool StartsChildJobs => true;

    /// <summary>A sharded run only waits for its child jobs, which go on without it: it resumes. A plain run does not.</summary>
    public override string? NotResumable(JsonObject inputs)
    {
        try
        {
            return Sharding.Requested(inputs["shards"]) is null ? InterruptedRun : null;
        }
        catch (FormatException)
        {
            return InterruptedRun;
        }
    }

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var forks = with.Forks;
        if (forks is < 1 or > MaxForks)
            throw new StepFailedException($"forks must be between 1 and {MaxForks}, not {forks}");
        var timeout = with.Timeout ?? o.RunTimeout;
        if (timeout > o.RunTimeout)
            timeout = o.RunTimeout;
        var check = with.Check || context.DryRun;
        if (Sharding.Requested(with.Shards) is { } shards)
            return await ExecuteShardedAsync(context, with, shards, check, timeout, cancellationToken);

        var playbookDir = with.PlaybookYaml is not null ? directories.Create("playbook") : null;
        try
        {
            string playbook;
            (ProjectInfo Project, string Commit)? source = null;
            if (playbookDir is not null)
            {
                if (with.Playbook is not null)
                    throw new StepFailedException("give playbook or playbook_yaml, not both");
                if (with.Project is not null)
                    throw new StepFailedException("a run from a project takes playbook (a path in the project), not playbook_yaml");
                playbook = Path.Combine(playbookDir.FullName, "playbook.yml");
                await File.WriteAllTextAsync(playbook, with.PlaybookYaml, cancellationToken);
            }
            else if (with.Project is { } project)
            {
                var (path, found, commit, _) = await PlaybookFromProjectAsync(context, project,
                    with.Playbook ?? throw new StepFailedException("give playbook: the path of the playbook in the project"), with.ProjectCommit, cancellationToken);
                (playbook, source) = (path, (found, commit));
            }
            else
            {
                playbook = ResolvePlaybook(with.Playbook ?? throw new StepFailedException("give playbook (a path under Ansible:PlaybookDirectory) or playbook_yaml"), o.PlaybookDirectory);
            }

            var (inventory, used, _, secretName) = await InventoryAsync(context, with, cancellationToken);
            inventory = await PlaintextAsync(context, inventory, used, secretName, cancellationToken);
            var request = new AnsibleRunRequest(context.JobId, context.Owner, context.StepOrder, context.StepName, playbook, inventory,
                with.Limit, with.ExtraVars, check, with.Diff, forks, with.Tags, timeout,
                await MachineCredentialAsync(with.Credential, cancellationToken)) { Masked = JobSecrets.WithPythonJsonForms(context.Secrets) };
            var run = await runner.RunAsync(request, cancellationToken);
            return await ConcludeAsync(context, run, check, timeout, used, source);
        }
        finally
        {
            playbookDir?.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The inventory YAML, which stored inventory version it is, and its expansion (both null for inline YAML: a sharded
    /// run expands that itself), as stored: secret values are placeholders, in the secret named last (null: none).
    /// </summary>
    private async Task<(string Yaml, JsonObject? Used, ExpandedInventory? Expanded, string? SecretName)> InventoryAsync(StepContext context, With with, CancellationToken ct)
    {
        if (with.InventoryYaml is { } inline)
        {
            if (with.Inventory is not null)
                throw new StepFailedException("give inventory or inventory_yaml, not both");
            // Only a shard (a job only a sharded run creates) fills placeholders in from a secret it names: a job
            // submitted by hand must not put any inventory's secret values into a YAML inventory of its own making.
            var secretName = with.InventorySecrets;
            if (secretName is not null && (!InventorySecrets.IsSecretName(secretName) || (await store.GetAsync(context.JobId, ct))?.Job.ParentId is null))
                throw new StepFailedException("inventory_secrets is only for the shards of a sharded run (the secret of the stored inventory version their parent runs)");
            return (inline, null, null, secretName);
        }
        var reference = with.Inventory ?? throw new StepFailedException("give inventory (a stored inventory's id or name) or inventory_yaml");
        if (!InventoryRef.TryParse(reference, out var parsed))
            throw new StepFailedException($"inventory '{Truncate(reference)}' {InventoryNames.ReferenceRule}");
        var version = with.InventoryVersion;
        // Without a version, the one that was latest when the job was submitted: a version added while the job waited
        // (for approval, for a worker) does not change what was asked for.
        // (Replicas' clocks may differ a little: when nothing is that old, the latest.)
        var submitted = (await store.GetAsync(context.JobId, ct))?.Job.CreatedAt.AsUtc();
        var found = await inventories.ResolveAsync(parsed, version, ct, asOf: version is null ? submitted : null)
            ?? await inventories.ResolveAsync(parsed, version, ct)
            ?? throw new StepFailedException(version is null ? $"inventory '{parsed}' does not exist (any more)" : $"inventory '{parsed}' has no version '{version}'");
        var v = found.Version;
        return (found.Yaml, new JsonObject { ["id"] = v.Id, ["name"] = v.Name, ["version"] = v.Version, ["hosts"] = v.HostCount }, found.Expanded, found.SecretName);
    }

    /// <summary>
    /// The YAML ansible gets: the placeholders replaced by the secret values, here only (the file is private to the run).
    /// A stored version's own YAML takes its <c>inventory</c> values; a shard's YAML (<paramref name="used"/> null),
    /// made from the expansion, takes the <c>expanded</c> ones. A value that cannot be found fails the step.
    /// </summary>
    private async Task<string> PlaintextAsync(StepContext context, string yaml, JsonObject? used, string? secretName, CancellationToken ct)
    {
        var what = used is null ? "the inventory" : $"inventory '{used["name"]}' version '{used["version"]}'";
        try
        {
            var values = secretName is null ? null : await inventories.SecretValuesAsync(secretName, ct);
            return used is null ? inventorySecrets.UnsealShard(yaml, values, what) : inventorySecrets.UnsealInventory(yaml, values, what);
        }
        catch (InventorySecretsException e)
        {
            throw new StepFailedException(used is null ? e.Message : $"{what}: {e.Message}");
        }
    }

    private static string Truncate(string s) => s.Length <= 63 ? s : s[..63] + "...";

    /// <summary>"2 of 6 hosts failed (a, b); first failure: ..." and "1 of 6 hosts unreachable (c)", the parts that apply.</summary>
    private static List<string> HostFailures(IReadOnlyDictionary<string, HostResult> hosts, List<string> failed, List<string> unreachable)
    {
        static string List(List<string> names) => string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" and {names.Count - 10} more" : "");
        var parts = new List<string>();
        if (failed.Count > 0)
            parts.Add($"{failed.Count} of {hosts.Count} hosts failed ({List(failed)}); first failure: {FirstFailure(hosts[failed[0]])}");
        if (unreachable.Count > 0)
            parts.Add($"{unreachable.Count} of {hosts.Count} hosts unreachable ({List(unreachable)})");
        return parts;
    }

    /// <summary>What the run used, in its outputs and on its summary event: the stored inventory version, the project's commit.</summary>
    private static void RecordSources(JsonObject outputs, JsonObject? inventory, (ProjectInfo Project, string Commit)? source)
    {
        if (inventory is not null)
            outputs["inventory"] = inventory;
        if (source is { } from)
        {
            outputs["project"] = from.Project.Name;
            outputs["project_commit"] = from.Commit;
        }
    }

    private static string FirstFailure(HostResult host)
    {
        static bool Counts(JsonObject f) => f["rescued"]?.GetValue<bool>() != true && f["ignored"]?.GetValue<bool>() != true;
        var first = host.Failures.FirstOrDefault(f => f["kind"]?.GetValue<string>() == "failed" && Counts(f)) ?? host.Failures.FirstOrDefault(Counts) ?? host.Failures.FirstOrDefault();
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
        RecordSources(outputs, inventory, source);
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
                throw new StepFailedException($"ansible-playbook did not finish within {timeout} and was stopped") { Outputs = outputs };
        }
        var mode = check ? "check mode: " : "";
        // ansible-playbook's exit codes: 0 ok, 1 error, 2 a host failed, 4 a host unreachable, 5 bad options,
        // 99 interrupted, 250 unexpected error.
        switch (run.ExitCode)
        {
            case 0:
                return new StepOutcome($"{mode}playbook ran on {hosts.Count} hosts, {changed} changed", outputs);
            case 2 or 4 when run.Hosts.Complete:
                throw new StepFailedException($"{mode}{string.Join("; ", HostFailures(hosts, failed, unreachable).DefaultIfEmpty("hosts failed"))} (ansible-playbook exit code {run.ExitCode})")
                {
                    Outputs = outputs,
                };
            case 99:
                throw new StepFailedException("ansible-playbook was interrupted (exit code 99)") { Outputs = outputs };
            default:
                var why = run.StderrTail.Length == 0 ? "" : ": " + run.StderrTail;
                throw new StepFailedException($"ansible-playbook failed with exit code {run.ExitCode}{why}") { Outputs = outputs };
        }
    }
}
