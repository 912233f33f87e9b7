using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Ansible;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Ui;

/// <summary>One host's figures summed over the job's Ansible runs (as GET /api/v1/jobs/{id}/hosts has them), and whether its run reached the PLAY RECAP.</summary>
internal sealed record HostLine(string Host, HostResult Result, bool Complete);

/// <summary>How many hosts there are, and how many failed, were unreachable, changed something, or came through clean.</summary>
internal sealed record HostTotals(int Hosts, int Failed, int Unreachable, int Changed, int Ok);

/// <summary>A sorted, filtered page of hosts; <c>Matching</c> is how many hosts the filter lets through in all.</summary>
internal sealed record HostsPage(IReadOnlyList<HostLine> Rows, int Matching, HostTotals Totals);

/// <summary>An Ansible job of the runs list with its host totals.</summary>
internal sealed record AnsibleRun(JobRow Job, HostTotals Totals);

/// <summary>
/// The console's reads of Ansible results: per-host figures from the same query as the API's per-host route
/// (<see cref="AnsibleResults.ListAsync"/> and <see cref="AnsibleResults.Sum"/>), sorted, filtered and paged on the
/// server; the run's standard output from its <c>ansible.output</c> events (what the event stream serves); and the
/// recent jobs that ran a playbook.
/// </summary>
internal sealed class AnsibleResultsQuery(AnsibleResults results, Database database, ISqlText dialect)
{
    public const string AllOutcomes = "all";

    /// <summary>What the table may be narrowed to: hosts with a failed task, unreachable hosts, hosts where something changed.</summary>
    public static readonly string[] Outcomes = [AllOutcomes, "failed", "unreachable", "changed"];

    /// <summary>What the table may be sorted by: the host name and each PLAY RECAP figure.</summary>
    public static readonly string[] Sorts = ["host", "ok", "changed", "failed", "skipped", "unreachable", "rescued", "ignored"];

    private const int OutputBatch = 100;

    /// <summary>
    /// Every host's figures, summed as the API sums them, then filtered, sorted (host name breaks ties) and paged here:
    /// the page shows one page of rows whatever the inventory's size. The sums are made from one query of the job's
    /// rows, as the API route makes them for every call.
    /// </summary>
    public async Task<HostsPage> HostsAsync(string jobId, string outcome, string? name, string sort, bool descending, int offset, int limit, CancellationToken ct)
    {
        var rows = await results.ListAsync(jobId, ct);
        var incomplete = rows.Where(r => !r.Complete).Select(r => r.Host).ToHashSet(StringComparer.Ordinal);
        var all = AnsibleResults.Sum(rows).Select(h => new HostLine(h.Key, h.Value, !incomplete.Contains(h.Key))).ToList();
        IEnumerable<HostLine> matching = all;
        matching = outcome switch
        {
            "failed" => matching.Where(h => h.Result.Failed > 0),
            "unreachable" => matching.Where(h => h.Result.Unreachable > 0),
            "changed" => matching.Where(h => h.Result.Changed > 0),
            _ => matching,
        };
        if (!string.IsNullOrEmpty(name))
            matching = matching.Where(h => h.Host.Contains(name, StringComparison.OrdinalIgnoreCase));
        var sorted = Sort(matching, sort, descending).ToList();
        return new HostsPage(sorted.Skip(offset).Take(limit).ToList(), sorted.Count, Totals(all.Select(h => h.Result)));
    }

    /// <summary>Each host's figures as the API's per-host route sums them, keyed by host: the totals a job page shows.</summary>
    public async Task<HostTotals> TotalsAsync(string jobId, CancellationToken ct) => Totals(AnsibleResults.Sum(await results.ListAsync(jobId, ct)).Values);

    private static HostTotals Totals(IEnumerable<HostResult> hosts)
    {
        int count = 0, failed = 0, unreachable = 0, changed = 0, ok = 0;
        foreach (var h in hosts)
        {
            count++;
            failed += h.Failed > 0 ? 1 : 0;
            unreachable += h.Unreachable > 0 ? 1 : 0;
            changed += h.Changed > 0 ? 1 : 0;
            ok += h.Failed == 0 && h.Unreachable == 0 ? 1 : 0;
        }
        return new HostTotals(count, failed, unreachable, changed, ok);
    }

    private static IOrderedEnumerable<HostLine> Sort(IEnumerable<HostLine> hosts, string sort, bool descending)
    {
        Func<HostLine, int>? figure = sort switch
        {
            "ok" => h => h.Result.Ok,
            "changed" => h => h.Result.Changed,
            "failed" => h => h.Result.Failed,
            "skipped" => h => h.Result.Skipped,
            "unreachable" => h => h.Result.Unreachable,
            "rescued" => h => h.Result.Rescued,
            "ignored" => h => h.Result.Ignored,
            _ => null,
        };
        if (figure is null)
            return descending ? hosts.OrderByDescending(h => h.Host, StringComparer.Ordinal) : hosts.OrderBy(h => h.Host, StringComparer.Ordinal);
        return (descending ? hosts.OrderByDescending(figure) : hosts.OrderBy(figure)).ThenBy(h => h.Host, StringComparer.Ordinal);
    }

    /// <summary>
    /// The end of the run's standard output: at most <paramref name="maxChars"/> characters, starting at a line, read
    /// from the newest output events backwards so a long run costs what its tail costs. <c>Truncated</c>: there is more before.
    /// </summary>
    public async Task<(string Text, bool Truncated)> StdoutTailAsync(string jobId, int maxChars, CancellationToken ct)
    {
        var parts = new List<string>();
        var length = 0;
        var before = long.MaxValue;
        var more = true;
        await using var connection = await database.OpenAsync(ct);
        while (length < maxChars && more)
        {
            var batch = (await connection.QueryAsync<(long Seq, string? Data)>(new CommandDefinition(
                "SELECT seq, data FROM job_events WHERE job_id = @jobId AND type = 'ansible.output' AND seq < @before ORDER BY seq DESC LIMIT @limit",
                new { jobId, before, limit = OutputBatch }, cancellationToken: ct))).AsList();
            more = batch.Count == OutputBatch;
            foreach (var (seq, data) in batch)
            {
                before = seq;
                if (Stdout(data) is not { } text)
                    continue;
                parts.Add(text);
                length += text.Length;
                if (length >= maxChars)
                {
                    more = true;
                    break;
                }
            }
        }
        parts.Reverse();
        var all = string.Concat(parts);
        if (all.Length <= maxChars)
            return (all, more && length >= maxChars);
        var cut = all.IndexOf('\n', all.Length - maxChars);
        return (cut < 0 ? all[^maxChars..] : all[(cut + 1)..], true);
    }

    /// <summary>The whole standard output, in order, a batch of events at a time (never all in memory at once).</summary>
    public async IAsyncEnumerable<string> StdoutAsync(string jobId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var after = 0L;
        while (true)
        {
            List<(long Seq, string? Data)> batch;
            await using (var connection = await database.OpenAsync(ct))
            {
                batch = (await connection.QueryAsync<(long Seq, string? Data)>(new CommandDefinition(
                    "SELECT seq, data FROM job_events WHERE job_id = @jobId AND type = 'ansible.output' AND seq > @after ORDER BY seq LIMIT @limit",
                    new { jobId, after, limit = OutputBatch }, cancellationToken: ct))).AsList();
            }
            foreach (var (seq, data) in batch)
            {
                after = seq;
                if (Stdout(data) is { } text)
                    yield return text;
            }
            if (batch.Count < OutputBatch)
                yield break;
        }
    }

    /// <summary>The text of an <c>ansible.output</c> event of the stdout stream (already masked when it was written), else null.</summary>
    private static string? Stdout(string? data) =>
        data is not null && JsonNode.Parse(data) is JsonObject o && o["stream"]?.GetValue<string>() == "stdout" ? o["text"]?.GetValue<string>() : null;

    /// <summary>
    /// The newest jobs (not shards) with an <c>ansible.run</c> step that the principal may see, after <paramref name="before"/>
    /// (keyset paging by id, as the jobs list), each with its host totals.
    /// </summary>
    public async Task<IReadOnlyList<AnsibleRun>> RunsAsync(string? before, int limit, IReadOnlyList<string>? namespaces, CancellationToken ct)
    {
        var sql = new StringBuilder(
            "SELECT id, type, status, actor, created_at AS CreatedAt, started_at AS StartedAt, finished_at AS FinishedAt, dry_run AS DryRun, " +
            "error, parent_id AS ParentId FROM jobs WHERE parent_id IS NULL " +
            "AND EXISTS (SELECT 1 FROM job_steps s WHERE s.job_id = jobs.id AND s.kind = 'ansible.run')");
        if (namespaces is not null)
            sql.Append(" AND ").Append(ScopeSql.JobWithinNamespaces(dialect));
        if (before is not null)
            sql.Append(" AND id < @before");
        sql.Append(" ORDER BY id DESC LIMIT @limit");
        List<JobRow> jobs;
        await using (var connection = await database.OpenAsync(ct))
        {
            jobs = (await connection.QueryAsync<JobRow>(new CommandDefinition(sql.ToString(),
                new { before, limit, namespaces = namespaces?.ToArray(), scopedYes = true }, cancellationToken: ct))).Select(JobStore.Normalize).ToList();
        }
        var runs = new List<AnsibleRun>(jobs.Count);
        foreach (var job in jobs)
            runs.Add(new AnsibleRun(job, await TotalsAsync(job.Id, ct)));
        return runs;
    }
}

/// <summary>How the console's Ansible pages write values that come from ansible's JSON.</summary>
internal static class UiAnsible
{
    /// <summary>A string as it is, anything else as its JSON, nothing as a dash.</summary>
    public static string Text(JsonNode? node) => node switch
    {
        null => "—",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };
}
