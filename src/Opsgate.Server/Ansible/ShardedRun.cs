using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Ansible;

/// <summary>What a sharded run is asked to do: the ansible.run inputs a shard passes on, and how to split.</summary>
/// <param name="Inventory">The run's inventory YAML.</param>
/// <param name="Expanded">Its expansion when it is a stored inventory (expanded once, when stored); null for inline YAML.</param>
/// <param name="SecretName">The secret holding the stored inventory's secret values (null: none): each shard's inventory,
/// kept in its job's parameters, holds only placeholders, which the shard's own step fills in.</param>
internal sealed record ShardRequest(int Requested, bool FailFast, string Inventory, ExpandedInventory? Expanded, string? SecretName, JsonObject ChildParams, TimeSpan Timeout);

/// <summary>How one shard ended: its child job, and its ansible.run step's exit code and whether it got to ansible's stats.</summary>
internal sealed record ShardEnd(JobRow Job, int? ExitCode, bool Complete);

/// <summary>How one sharded run ended, for the parent step's result.</summary>
/// <param name="Hosts">Every host's figures, summed over the shards' host rows as <c>/hosts</c> sums them.</param>
/// <param name="Complete">Every shard got to ansible's stats (its PLAY RECAP), whether or not any of its hosts were in a play.</param>
internal sealed record ShardedResult(IReadOnlyList<ShardEnd> Shards, IReadOnlyDictionary<string, HostResult> Hosts, bool Complete);

/// <summary>
/// A sharded playbook run, as its parent job's ansible.run step does it. The inventory is expanded (ansible-inventory),
/// its hosts cut into contiguous shards, and each shard becomes a child job of the built-in runbook
/// <c>ansible-shard</c> with an inventory of only its hosts. Children are claimed by any worker of any replica, on the
/// child slots (Jobs:ChildWorkers), never on the slot the waiting parent holds.
/// <para>
/// Events: the parent relays every <c>ansible.*</c> event of each child into its own stream, marked with
/// <c>shard</c> (and the child's <c>shard_job</c>), in the child's order; a child's relay mark moves in the same
/// transaction as the relayed events, so each reaches the parent exactly once, also when the parent's worker dies
/// and another one resumes the wait. Per-host results stay on the children's rows; the parent's /hosts reads them.
/// </para>
/// </summary>
internal sealed partial class ShardedRun(
    JobStore store, JobCommands commands, JobSecrets secrets, InventoryExpander expander, AnsibleResults results, JobSignals signals,
    IOptions<AnsibleOptions> options, ILogger<ShardedRun> logger)
{
    /// <summary>The steps of the built-in <c>ansible-shard</c> runbook (Engine/Runbooks/BuiltIn/ansible-shard.yaml); the runner checks they match.</summary>
    private static readonly IReadOnlyList<(string Name, string Kind)> ShardSteps = [("playbook", "ansible.run")];

    private const string ShardRunbook = "ansible-shard";
    private const int RelayBatch = 1000;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);
    // CancellationTokenSource takes at most ~49 days; a run of 64 shards of a long RunTimeout stays far below.
    private static readonly TimeSpan MaxWait = TimeSpan.FromDays(30);

    public async Task<ShardedResult> RunAsync(StepContext context, ShardRequest request, CancellationToken ct)
    {
        var parent = (await store.GetAsync(context.JobId, ct))?.Job ?? throw new InvalidOperationException($"job {context.JobId} vanished");
        IReadOnlyList<JobRow> children;
        // The parent records its round in the same transaction that creates the children, and a retry of the job
        // clears it. So a round here means this run was interrupted (a crash, a shutdown) after the children were
        // created: they went on without it, and it waits for them again rather than running the playbook twice.
        if (parent.ShardRound is { } round)
            children = await store.ChildrenAsync(parent.Id, round, ct);
        else
            (round, children) = await SubmitAsync(context, parent, request, ct);
        LogWaiting(logger, parent.Id, children.Count, round);
        children = await WaitAsync(context, round, children, request, ct);

        var ids = children.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        var hosts = AnsibleResults.Sum((await results.ListAsync(parent.Id, ct)).Where(r => ids.Contains(r.JobId)));
        var ends = new List<ShardEnd>(children.Count);
        foreach (var child in children)
        {
            // The shard's one step keeps its outputs also when it failed (exit code 2, 4, an error).
            var output = (await store.GetAsync(child.Id, ct)) is { Steps: [var step, ..] } && step.Output is { } json ? JsonNode.Parse(json) as JsonObject : null;
            var exit = output?["exit_code"] is JsonValue code && code.TryGetValue<int>(out var value) ? value : (int?)null;
            ends.Add(new ShardEnd(child, exit, output?["complete"]?.GetValue<bool>() == true));
        }
        return new ShardedResult(ends, hosts, ends.All(e => e.Complete));
    }

    /// <summary>
    /// The expanded inventory of this run: a stored inventory's (expanded once, when stored), or an inline one's
    /// through ansible-inventory.
    /// </summary>
    private async Task<ExpandedInventory> ExpandedInventoryAsync(ShardRequest request, CancellationToken ct)
    {
        if (request.Expanded is { } stored)
            return stored;
        try
        {
            return await expander.ExpandAsync(request.Inventory, ct);
        }
        catch (InventoryException e)
        {
            throw new StepFailedException($"the inventory could not be expanded for sharding: {e.Message}");
        }
    }

    private async Task<(int Round, IReadOnlyList<JobRow> Children)> SubmitAsync(StepContext context, JobRow parent, ShardRequest request, CancellationToken ct)
    {
        var expanded = await ExpandedInventoryAsync(request, ct);
        if (expanded.Hosts.Count == 0)
            throw new StepFailedException("the inventory has no hosts to shard");
        var count = Sharding.Count(request.Requested, expanded.Hosts.Count, options.Value.HostsPerAutoShard);
        var chunks = Sharding.Partition(expanded.Hosts, count);
        var round = (await store.ChildrenAsync(parent.Id, null, ct)).Select(c => c.ShardRound ?? 0).DefaultIfEmpty(0).Max() + 1;
        var now = store.Now();
        var children = chunks.Select((hosts, i) =>
        {
            var parameters = request.ChildParams.DeepClone().AsObject();
            parameters["inventory"] = Sharding.Inventory(expanded.List, hosts);
            parameters["inventory_secrets"] = request.SecretName;
            // Plays for hosts outside the inventory (the implicit localhost) run in the first shard only: --limit=all
            // leaves them no hosts in the others, as ansible does for any host the limit does not match.
            parameters["limit"] = i == 0 ? null : "all";
            return new NewJob(JobIds.New(new DateTimeOffset(now)), ShardRunbook, parameters, parent.DryRun, JobStatus.Pending, parent.Actor, parent.PrincipalId,
                parent.SourceIp, null, null, ShardSteps)
            {
                ParentId = parent.Id, ShardIndex = i, ShardRound = round, ShardHosts = hosts.Count,
                SubmitterNamespaces = ScopeHolder.FromJson(parent.SubmitterNamespaces),
            };
        }).ToList();
        // A child's parameters are the parent's step inputs, secret values included: they go to the secret store first.
        foreach (var child in children)
            await secrets.SealChildAsync(child.Id, child.Params, context.Secrets, ct);
        if (!await store.SubmitChildrenAsync(parent, context.Owner, round, children, ct))
            throw LeaseLost();
        await context.ProgressAsync($"{expanded.Hosts.Count} hosts in {count} shards; waiting for them", new JsonObject
        {
            ["shards"] = new JsonArray([.. children.Select(c => (JsonNode)new JsonObject { ["shard"] = c.ShardIndex, ["job_id"] = c.Id, ["hosts"] = c.ShardHosts })]),
        });
        return (round, await store.ChildrenAsync(parent.Id, round, ct));
    }

    /// <summary>Relays the children's events until every child has finished and all its events are relayed; applies fail_fast.</summary>
    private async Task<IReadOnlyList<JobRow>> WaitAsync(StepContext context, int round, IReadOnlyList<JobRow> children, ShardRequest request, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // Each child has the run's timeout; the wait allows for all of them running one after the other (few child
        // slots), and ends a wait for children no worker ever claims.
        timeout.CancelAfter(TimeSpan.FromTicks(Math.Min(request.Timeout.Ticks * children.Count, MaxWait.Ticks)));
        var failFastDone = false;
        try
        {
            while (true)
            {
                var done = true;
                foreach (var child in children)
                {
                    await RelayAsync(context, child, timeout.Token);
                    done &= JobStatus.IsFinished(child.Status);
                }
                if (request.FailFast && !failFastDone && children.FirstOrDefault(c => c.Status is JobStatus.Failed or JobStatus.Cancelled) is { } first)
                {
                    failFastDone = true;
                    foreach (var other in children.Where(c => !JobStatus.IsFinished(c.Status)))
                        await commands.CancelAsync(other.Id, $"fail_fast (shard {first.ShardIndex} {first.Status})", CancellationToken.None, systemAction: "job.cancel");
                }
                if (done)
                    return children;
                // Children running in this process wake this at once; those on other replicas are seen on the next tick.
                await signals.WaitForEventsAsync(children.Where(c => !JobStatus.IsFinished(c.Status)).Select(c => c.Id), PollInterval, timeout.Token);
                children = await store.ChildrenAsync(context.JobId, round, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            // The children are cancelled when this job finishes (JobRunner cancels a finished job's children).
            throw new StepFailedException($"the shards did not finish within {request.Timeout * children.Count}");
        }
    }

    /// <summary>
    /// Relays the child's events past its relay mark. The child row was read before its events, and a finished job's
    /// last event is committed with its status, so a finished child is fully relayed once its mark reaches its last_seq.
    /// </summary>
    private async Task RelayAsync(StepContext context, JobRow child, CancellationToken ct)
    {
        while (child.RelayedSeq < child.LastSeq)
        {
            var events = await store.EventsAfterAsync(child.Id, child.RelayedSeq, RelayBatch, ct);
            if (events.Count == 0)
                return;
            var relayed = new List<NewEvent>(events.Count);
            foreach (var e in events.Where(e => e.Type.StartsWith("ansible.", StringComparison.Ordinal)))
            {
                var data = e.Data is null ? [] : JsonNode.Parse(e.Data)!.AsObject();
                data["shard"] = child.ShardIndex;
                data["shard_job"] = child.Id;
                data["step"] = context.StepName;
                relayed.Add(new NewEvent(e.Type, context.StepOrder, data));
            }
            if (events.FirstOrDefault(e => e.Type == "job.finished") is { } finished)
            {
                var data = finished.Data is null ? new JsonObject() : JsonNode.Parse(finished.Data)!.AsObject();
                relayed.Add(new NewEvent("ansible.shard_finished", context.StepOrder, new JsonObject
                {
                    ["step"] = context.StepName, ["shard"] = child.ShardIndex, ["shard_job"] = child.Id, ["hosts"] = child.ShardHosts,
                    ["status"] = data["status"]?.DeepClone(), ["error"] = data["error"]?.DeepClone(),
                }));
            }
            if (!await store.RelayAsync(context.JobId, context.Owner, child.Id, events[^1].Seq, relayed, CancellationToken.None))
                throw LeaseLost();
            child.RelayedSeq = events[^1].Seq;
        }
    }

    private static InvalidOperationException LeaseLost() => new("the job's lease was lost while it waited for its shards; another worker owns the job now");

    [LoggerMessage(EventId = 1110, Level = LogLevel.Information, Message = "Job {JobId}: waiting for {Shards} shards (round {Round})")]
    private static partial void LogWaiting(ILogger logger, string jobId, int shards, int round);
}
