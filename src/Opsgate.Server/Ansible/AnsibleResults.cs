using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Ansible;

internal sealed class JobHostRow
{
    public string JobId { get; set; } = "";
    public int StepOrder { get; set; }
    public string Host { get; set; } = "";
    public int Ok { get; set; }
    public int Changed { get; set; }
    public int Failed { get; set; }
    public int Skipped { get; set; }
    public int Unreachable { get; set; }
    public int Rescued { get; set; }
    public int Ignored { get; set; }
    public string? Failures { get; set; }
    public bool Complete { get; set; }
}

/// <summary>Per-host results of Ansible runs (<c>job_hosts</c>), kept apart from the events so pruning events never loses them.</summary>
internal sealed class AnsibleResults(Database database, JobStore store)
{
    /// <summary>
    /// Replaces the step's host rows (a retried step starts over) and appends <paramref name="events"/>, in one
    /// transaction, if <paramref name="owner"/> still holds the job. False: lease lost, nothing written.
    /// </summary>
    public async Task<bool> SaveAsync(string jobId, string owner, int stepOrder, HostTally tally, IReadOnlyList<NewEvent> events, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        if (!await store.AppendEventsAsync(connection, tx, jobId, owner, events, ct))
            return false;
        await connection.ExecuteAsync("DELETE FROM job_hosts WHERE job_id = @jobId AND step_order = @stepOrder", new { jobId, stepOrder }, tx);
        await connection.ExecuteAsync(
            """
            INSERT INTO job_hosts (job_id, step_order, host, ok, changed, failed, skipped, unreachable, rescued, ignored, failures, complete)
            VALUES (@JobId, @StepOrder, @Host, @Ok, @Changed, @Failed, @Skipped, @Unreachable, @Rescued, @Ignored, @Failures, @Complete)
            """,
            tally.Hosts.Select(h => new JobHostRow
            {
                JobId = jobId, StepOrder = stepOrder, Host = h.Key, Ok = h.Value.Ok, Changed = h.Value.Changed, Failed = h.Value.Failed,
                Skipped = h.Value.Skipped, Unreachable = h.Value.Unreachable, Rescued = h.Value.Rescued, Ignored = h.Value.Ignored,
                Failures = h.Value.Failures.Count == 0 ? null : new JsonArray([.. h.Value.Failures.Select(f => (JsonNode)f.DeepClone())]).ToJsonString(),
                Complete = tally.Complete,
            }), tx);
        await write.CommitAsync(ct);
        return true;
    }

    /// <summary>
    /// The job's host rows, and for a sharded parent its children's (of its latest round): each host ran in one shard,
    /// so the parent's results read like a single run's.
    /// </summary>
    public async Task<IReadOnlyList<JobHostRow>> ListAsync(string jobId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<JobHostRow>(
            """
            SELECT job_id, step_order, host, ok, changed, failed, skipped, unreachable, rescued, ignored, failures, complete
            FROM job_hosts WHERE job_id = @jobId OR job_id IN (
                SELECT id FROM jobs WHERE parent_id = @jobId AND shard_round = (SELECT MAX(shard_round) FROM jobs WHERE parent_id = @jobId))
            ORDER BY host, step_order
            """, new { jobId })).AsList();
    }

    /// <summary>Each host's figures summed over its rows (several steps, or the shards of a sharded run), failures in row order.</summary>
    public static SortedDictionary<string, HostResult> Sum(IEnumerable<JobHostRow> rows)
    {
        var hosts = new SortedDictionary<string, HostResult>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (!hosts.TryGetValue(row.Host, out var host))
                hosts[row.Host] = host = new HostResult();
            host.Ok += row.Ok;
            host.Changed += row.Changed;
            host.Failed += row.Failed;
            host.Skipped += row.Skipped;
            host.Unreachable += row.Unreachable;
            host.Rescued += row.Rescued;
            host.Ignored += row.Ignored;
            if (row.Failures is not null)
                host.Failures.AddRange(JsonNode.Parse(row.Failures)!.AsArray().Select(f => f!.AsObject().DeepClone().AsObject()));
        }
        return hosts;
    }
}
