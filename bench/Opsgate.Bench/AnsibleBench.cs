using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Opsgate.Bench;

/// <summary>
/// One round of the overhead scenario (raw, then the 1-shard job, then the sharded job when that leg is on); seconds are
/// wall time as the client sees it.
/// </summary>
/// <param name="OpsgateSeconds">The 1-shard job on the main server, whose runs are sandboxed (<c>Ansible:Sandbox=bubblewrap</c>).</param>
/// <param name="UnsandboxedSeconds">The same job on a server with <c>Ansible:Sandbox=none</c>, or null when that leg is off.</param>
internal sealed record OverheadPair(int Run, double RawSeconds, double OpsgateSeconds, string JobId, ShardedRun? Sharded, double? UnsandboxedSeconds = null)
{
    public double Ratio => OpsgateSeconds / RawSeconds;
}

/// <summary>One shard of a sharded run, from the server's own timestamps (same clock: every process runs on this machine).</summary>
/// <param name="Process">Which bench server ran it ("A" the first, "B" the second), from the worker named in its <c>job.started</c> event.</param>
/// <param name="SubmittedSeconds">The parent's started_at until the child was created (the parent's split and submit).</param>
/// <param name="ClaimSeconds">The child's created_at until its started_at (waiting for and taking a child slot).</param>
/// <param name="FreeSlotClaimSeconds">The claim alone: from the later of its created_at and the last finish of another shard on the same
/// process before it started (when it waited for a slot, that finish freed it) to its started_at.</param>
/// <param name="FirstEventSeconds">The parent's started_at until the child's first <c>ansible.*</c> event.</param>
/// <param name="RelayFirstSeconds">The child's first <c>ansible.*</c> event until its copy on the parent's stream.</param>
/// <param name="RelayFinishSeconds">The child's <c>job.finished</c> until the parent's <c>ansible.shard_finished</c> for it.</param>
internal sealed record ShardRow(
    int Index, string JobId, int Hosts, string Status, string Process, double SubmittedSeconds, double ClaimSeconds, double FreeSlotClaimSeconds,
    double? FirstEventSeconds, double? RelayFirstSeconds, double? RelayFinishSeconds, double RunSeconds);

/// <summary>
/// The sharded leg's job: its wall time, the process that ran the parent (it relays the shards' events), its shards, and per
/// bench server the ansible-shard jobs its /metrics counted during the run.
/// </summary>
internal sealed record ShardedRun(string JobId, double Seconds, string ParentProcess, IReadOnlyList<ShardRow> Shards, IReadOnlyDictionary<string, double> MetricShards);

internal sealed record OverheadMeasurement(string Database, int Hosts, int Forks, int Shards, int Processes, IReadOnlyList<OverheadPair> Pairs, string Load, string? Failure)
{
    public const double MaxRatio = 1.05;
    public const double MaxPenalty = 1.10;

    public double RawMedian => Median(Pairs.Select(p => p.RawSeconds));
    public double OpsgateMedian => Median(Pairs.Select(p => p.OpsgateSeconds));
    public double ShardedMedian => Median(Pairs.Where(p => p.Sharded is not null).Select(p => p.Sharded!.Seconds));
    public double UnsandboxedMedian => Median(Pairs.Select(p => p.UnsandboxedSeconds).OfType<double>());

    /// <summary>The median wall time with Ansible:Sandbox=none over the median raw wall time.</summary>
    public double UnsandboxedRatio => UnsandboxedMedian / RawMedian;

    /// <summary>The target's figure: the median Opsgate wall time over the median raw wall time.</summary>
    public double Ratio => OpsgateMedian / RawMedian;

    /// <summary>The shard cost: the median wall time with N shards over the median with 1 shard.</summary>
    public double Penalty => ShardedMedian / OpsgateMedian;

    public string Verdict => Failure is not null ? "FAILED" : Pairs.Count == 0 ? "no runs" : Ratio <= MaxRatio ? "met" : "missed";

    public string PenaltyVerdict => Failure is not null ? "FAILED" : !Pairs.Any(p => p.Sharded is not null) ? "no runs" : Penalty <= MaxPenalty ? "met" : "missed";

    public static double Median(IEnumerable<double> values)
    {
        var all = values.Order().ToArray();
        return all.Length == 0 ? double.NaN : all.Length % 2 == 1 ? all[all.Length / 2] : (all[all.Length / 2 - 1] + all[all.Length / 2]) / 2;
    }
}

/// <param name="StoreSeconds">POST /api/v1/inventories until its 201 (the server runs ansible-inventory on it).</param>
/// <param name="FirstEventSeconds">POST /api/v1/jobs until the SSE client read the job's first task result event; null past the cap.</param>
/// <param name="CancelSeconds">POST /api/v1/jobs/{id}/cancel until the SSE client read job.finished.</param>
/// <param name="RawFirstSeconds">Raw ansible-playbook start until the first task result line on its stdout; null past the cap.</param>
internal sealed record LargeMeasurement(
    string Database, int Hosts, string? Shards, double StoreSeconds, double? FirstEventSeconds, double? CancelSeconds, string FinalStatus,
    double? RawFirstSeconds, TimeSpan Cap, string Load, string? Failure)
{
    public const double MaxFirstEventSeconds = 5;

    public string Verdict => Failure is not null ? "FAILED" : FirstEventSeconds < MaxFirstEventSeconds ? "met" : "missed";
}

/// <summary>
/// The Ansible scenarios of issue 5, on a server of their own (it needs <c>Ansible:PlaybookDirectory</c>):
/// <list type="bullet">
/// <item><c>ansible</c> (overhead): a 3-task playbook (ping, command /bin/true, debug) over N local-connection hosts, raw
/// <c>ansible-playbook --forks=20</c> (see <see cref="RawAnsible"/>) and the same playbook and inventory as an
/// <c>ansible-playbook</c> job (one shard), alternating, R runs each. Raw: process start to exit. Opsgate: POST /api/v1/jobs
/// until the job's SSE stream delivered <c>job.finished</c>. Every Opsgate run's /hosts must equal its raw partner's PLAY RECAP.</item>
/// <item><c>ansible-large</c>: a 20,000-host inventory (one group, a host range, group vars) stored through the API, then a
/// 1-task debug job: POST until the first task result event on SSE, then cancel and wait for <c>job.finished</c>. Baseline:
/// raw ansible-playbook over the same inventory until its first task result line, with a cap; then it is killed.</item>
/// </list>
/// </summary>
internal static class AnsibleBench
{
    public const int Forks = 20;
    private const string LocalVars = "ansible_connection: local, ansible_python_interpreter: /usr/bin/python3";
    private static readonly TimeSpan RunLimit = TimeSpan.FromMinutes(30);

    private const string OverheadPlaybook =
        """
        # Written by opsgate-bench (ansible overhead scenario).
        - name: bench overhead
          hosts: all
          gather_facts: false
          tasks:
            - name: ping
              ansible.builtin.ping:
            - name: true
              ansible.builtin.command: /bin/true
            - name: debug
              ansible.builtin.debug:
                msg: "{{ inventory_hostname }}"
        """;

    private const string LargePlaybook =
        """
        # Written by opsgate-bench (ansible-large scenario).
        - name: bench large
          hosts: all
          gather_facts: false
          tasks:
            - name: debug
              ansible.builtin.debug:
                msg: "{{ inventory_hostname }} {{ bench_group_var }}"
        """;

    public sealed record Results(IReadOnlyList<OverheadMeasurement> Overhead, IReadOnlyList<LargeMeasurement> Large)
    {
        public bool Failed => Overhead.Any(m => m.Failure is not null) || Large.Any(m => m.Failure is not null);
    }

    public static string Describe(BenchOptions options)
    {
        var lines = new List<string>();
        if (options.Runs("ansible"))
            lines.Add($"ansible: 3-task playbook (ping, command /bin/true, debug) over {options.AnsibleHosts:N0} local hosts, forks {Forks}; " +
                $"{options.AnsibleRuns} run(s) each of raw ansible-playbook (Opsgate's environment, no callback plugin; start to exit) and the ansible-playbook job " +
                "(1 shard; POST /api/v1/jobs to job.finished on its SSE stream)" +
                (options.AnsibleShards > 1 ? $" and the same job with shards {options.AnsibleShards}" + (options.PostgresConnectionString is null ? "" : " (a second Opsgate process on the same database shares the shards)") : "") +
                (options.AnsibleUnsandboxed && options.PostgresConnectionString is null ? " and the 1-shard job on a server with Ansible:Sandbox=none (the others: bubblewrap)" : "") +
                ", alternating, after one unmeasured run of each over 2 hosts; target median Opsgate / median raw <= 1.05" +
                (options.AnsibleShards > 1 ? $", shard cost median {options.AnsibleShards} shards / median 1 shard <= 1.10" : ""));
        if (options.Runs("ansible-large"))
            lines.Add($"ansible-large: {options.LargeHosts:N0}-host inventory (one group, a host range, group vars) stored through POST /api/v1/inventories; " +
                $"1-task debug job{(options.LargeShards is null ? "" : $" with shards {options.LargeShards}")}, forks {Forks}: POST /api/v1/jobs to its first task result event on SSE, then cancel; " +
                $"baseline: raw ansible-playbook start to its first task result line; cap {options.LargeCap.TotalSeconds:0} s each; target < 5 s");
        return string.Join('\n', lines);
    }

    public static async Task<Results> RunAsync(BenchOptions options, TextWriter o, HttpClient http, CancellationToken ct)
    {
        var overhead = new List<OverheadMeasurement>();
        var large = new List<LargeMeasurement>();
        var playbooks = Directory.CreateTempSubdirectory("opsgate-bench-playbooks-").FullName;
        // Streams last minutes; each wait below has its own bound instead of the client's time-out.
        using var handler = new SocketsHttpHandler { UseProxy = false, UseCookies = false, AllowAutoRedirect = false, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            await File.WriteAllTextAsync(Path.Combine(playbooks, "overhead.yml"), OverheadPlaybook, ct);
            await File.WriteAllTextAsync(Path.Combine(playbooks, "large.yml"), LargePlaybook, ct);
            // The main server's runs are sandboxed (bubblewrap required: a machine without it fails here rather than
            // measuring unsandboxed runs under the sandboxed name); a third server runs the same jobs without the sandbox.
            await using var server = await ServerProcess.StartAsync(options, http, ct, "--Ansible:PlaybookDirectory=" + playbooks, "--Ansible:Sandbox=bubblewrap");
            o.WriteLine($"ansible server pid {server.ProcessId} at {server.BaseAddress}, Ansible:PlaybookDirectory={playbooks}, Ansible:Sandbox=bubblewrap");
            // SQLite only: on PostgreSQL a server on the same database would claim the sandboxed server's jobs too.
            await using var unsandboxed = options.Runs("ansible") && options.AnsibleUnsandboxed && options.PostgresConnectionString is null
                ? await ServerProcess.StartAsync(options, http, ct, "--Ansible:PlaybookDirectory=" + playbooks, "--Ansible:Sandbox=none")
                : null;
            if (unsandboxed is not null)
                o.WriteLine($"ansible unsandboxed server pid {unsandboxed.ProcessId} at {unsandboxed.BaseAddress}, Ansible:Sandbox=none");
            // On PostgreSQL a second process on the same database shares the work (shards and parents alike), started after the
            // first is ready so that only one runs the migrations. Requests all go to the first; the second is read for /metrics.
            await using var second = options.PostgresConnectionString is not null && options.Runs("ansible") && options.AnsibleShards > 1
                ? await ServerProcess.StartAsync(options, null, server.AdminKey, http, ct, "--Ansible:PlaybookDirectory=" + playbooks, "--Ansible:Sandbox=bubblewrap")
                : null;
            if (second is not null)
                o.WriteLine($"ansible second server (same database) pid {second.ProcessId} at {second.BaseAddress}");
            var api = new OpsgateApi(client, new Scenarios(client, client, server.BaseAddress, server.AdminKey), server.BaseAddress);
            // A refused request or a run over its limit fails that scenario, not the whole benchmark.
            if (options.Runs("ansible"))
            {
                try
                {
                    var servers = new List<(string Name, ServerProcess Server)> { ("A", server) };
                    if (second is not null)
                        servers.Add(("B", second));
                    var off = unsandboxed is null ? null : new OpsgateApi(client, new Scenarios(client, client, unsandboxed.BaseAddress, unsandboxed.AdminKey), unsandboxed.BaseAddress);
                    overhead.Add(await OverheadAsync(options, o, api, off, client, servers, playbooks, ct));
                }
                catch (BenchException e)
                {
                    o.WriteLine($"ansible FAILED: {e.Message}");
                    overhead.Add(new OverheadMeasurement(options.DatabaseName, options.AnsibleHosts, Forks, Math.Max(options.AnsibleShards, 1), second is null ? 1 : 2, [], Load(), e.Message));
                }
            }
            if (options.Runs("ansible-large"))
            {
                try
                {
                    large.Add(await LargeAsync(options, o, api, playbooks, ct));
                }
                catch (BenchException e)
                {
                    o.WriteLine($"ansible-large FAILED: {e.Message}");
                    large.Add(new LargeMeasurement(options.DatabaseName, options.LargeHosts, options.LargeShards, double.NaN, null, null, "?", null, options.LargeCap, Load(), e.Message));
                }
            }
        }
        finally
        {
            RawAnsible.Remove(playbooks);
        }
        return new Results(overhead, large);
    }

    private static async Task<OverheadMeasurement> OverheadAsync(
        BenchOptions options, TextWriter o, OpsgateApi api, OpsgateApi? unsandboxed, HttpClient client, List<(string Name, ServerProcess Server)> servers, string playbooks,
        CancellationToken ct)
    {
        var shards = options.AnsibleShards > 1 ? options.AnsibleShards.ToString(CultureInfo.InvariantCulture) : null;
        var loadBefore = Load();
        var width = options.AnsibleHosts.ToString(CultureInfo.InvariantCulture).Length;
        string Inventory(int n) => RawAnsible.GroupInventory(
            Enumerable.Range(1, n).Select(i => "host" + i.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0')),
            new Dictionary<string, string> { ["ansible_connection"] = "local", ["ansible_python_interpreter"] = "/usr/bin/python3" });
        var playbook = Path.Combine(playbooks, "overhead.yml");
        var failures = new List<string>();
        var pairs = new List<OverheadPair>();

        // One unmeasured run of each over 2 hosts: ansible's files in the page cache, the server's paths JIT-compiled.
        var warmup = Inventory(2);
        await api.StoreInventoryAsync("bench-overhead-warmup", warmup, null, ct);
        var rawDir = RawAnsible.Prepare(warmup);
        try
        {
            var raw = await RawAnsible.RunAsync(rawDir, playbook, Forks, RunLimit, ct);
            var job = await api.RunJobAsync("overhead.yml", "bench-overhead-warmup", null, RunLimit, ct);
            if (unsandboxed is not null)
            {
                await unsandboxed.StoreInventoryAsync("bench-overhead-warmup", warmup, null, ct);
                await unsandboxed.RunJobAsync("overhead.yml", "bench-overhead-warmup", null, RunLimit, ct);
            }
            var sharded = shards is null ? null : await api.RunJobAsync("overhead.yml", "bench-overhead-warmup", "2", RunLimit, ct);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ansible warm-up (2 hosts, unmeasured): raw {raw.Seconds:0.00} s (exit {raw.ExitCode}), Opsgate {job.Seconds:0.00} s ({job.Status})") +
                (sharded is null ? "" : string.Create(CultureInfo.InvariantCulture, $", 2 shards {sharded.Seconds:0.00} s ({sharded.Status})")));
        }
        finally
        {
            RawAnsible.Remove(rawDir);
        }

        var inventory = Inventory(options.AnsibleHosts);
        await api.StoreInventoryAsync("bench-overhead", inventory, null, ct);
        if (unsandboxed is not null)
            await unsandboxed.StoreInventoryAsync("bench-overhead", inventory, null, ct);
        rawDir = RawAnsible.Prepare(inventory);
        try
        {
            for (var run = 1; run <= options.AnsibleRuns; run++)
            {
                var raw = await RawAnsible.RunAsync(rawDir, playbook, Forks, RunLimit, ct);
                var recap = RawAnsible.Recap(raw.Stdout);
                if (raw.ExitCode != 0)
                    failures.Add($"run {run}: raw ansible-playbook exited {raw.ExitCode}: {Last(raw.Stderr)}");
                if (recap.Count != options.AnsibleHosts)
                    failures.Add($"run {run}: the raw PLAY RECAP has {recap.Count} hosts, not {options.AnsibleHosts}");

                var job = await api.RunJobAsync("overhead.yml", "bench-overhead", null, RunLimit, ct);
                if (job.Status != "succeeded")
                    failures.Add($"run {run}: job {job.JobId} {job.Status}: {job.Error}");
                var hosts = await api.HostsAsync(job.JobId, ct);
                var mismatch = Compare(recap, hosts);
                if (mismatch is not null)
                    failures.Add($"run {run}: job {job.JobId} /hosts differs from the raw PLAY RECAP: {mismatch}");

                double? off = null;
                if (unsandboxed is not null)
                {
                    var offJob = await unsandboxed.RunJobAsync("overhead.yml", "bench-overhead", null, RunLimit, ct);
                    if (offJob.Status != "succeeded")
                        failures.Add($"run {run}: unsandboxed job {offJob.JobId} {offJob.Status}: {offJob.Error}");
                    if (Compare(recap, await unsandboxed.HostsAsync(offJob.JobId, ct)) is { } offMismatch)
                        failures.Add($"run {run}: unsandboxed job {offJob.JobId} /hosts differs from the raw PLAY RECAP: {offMismatch}");
                    off = offJob.Seconds;
                }

                ShardedRun? sharded = null;
                string? shardedMismatch = null;
                if (shards is not null)
                {
                    var before = await ShardMetricsAsync(client, servers, ct);
                    var shardedJob = await api.RunJobAsync("overhead.yml", "bench-overhead", shards, RunLimit, ct);
                    var after = await ShardMetricsAsync(client, servers, ct);
                    if (shardedJob.Status != "succeeded")
                        failures.Add($"run {run}: sharded job {shardedJob.JobId} {shardedJob.Status}: {shardedJob.Error}");
                    shardedMismatch = Compare(recap, await api.HostsAsync(shardedJob.JobId, ct));
                    if (shardedMismatch is not null)
                        failures.Add($"run {run}: sharded job {shardedJob.JobId} /hosts differs from the raw PLAY RECAP: {shardedMismatch}");
                    var (parentProcess, rows) = await api.ShardRowsAsync(shardedJob.JobId, servers.Select(s => (s.Name, s.Server.ProcessId)).ToList(), ct);
                    if (rows.Count != options.AnsibleShards)
                        failures.Add($"run {run}: sharded job {shardedJob.JobId} has {rows.Count} children, not {options.AnsibleShards}");
                    sharded = new ShardedRun(shardedJob.JobId, shardedJob.Seconds, parentProcess, rows, servers.ToDictionary(s => s.Name, s => after[s.Name] - before[s.Name]));
                }

                var pair = new OverheadPair(run, raw.Seconds, job.Seconds, job.JobId, sharded, off);
                pairs.Add(pair);
                o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ansible run {run}: raw {pair.RawSeconds:0.00} s, Opsgate sandboxed {pair.OpsgateSeconds:0.00} s (job {job.JobId}, {job.Events:N0} events), ratio {pair.Ratio:0.000}") +
                    (off is { } u ? string.Create(CultureInfo.InvariantCulture, $", unsandboxed {u:0.00} s, ratio {u / pair.RawSeconds:0.000}") : "") +
                    (sharded is null ? "" : string.Create(CultureInfo.InvariantCulture, $", {shards} shards {sharded.Seconds:0.00} s (job {sharded.JobId}), penalty {sharded.Seconds / pair.OpsgateSeconds:0.000}")) +
                    $"; recap {Totals(recap)}; /hosts {(mismatch is null ? "equal" : "DIFFERENT")}" +
                    (sharded is null ? "" : $", sharded /hosts {(shardedMismatch is null ? "equal" : "DIFFERENT")}") + $"; load {Load()}");
                if (sharded is not null)
                {
                    foreach (var r in sharded.Shards)
                    {
                        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"  shard {r.Index} ({r.JobId}, {r.Hosts} hosts, {r.Status}) on {r.Process}: created {r.SubmittedSeconds:0.000} s after the parent started, " +
                            $"claimed {r.ClaimSeconds:0.000} s later ({r.FreeSlotClaimSeconds:0.000} s after a slot was free), first ansible event at {Opt(r.FirstEventSeconds)} s, relayed after {Opt(r.RelayFirstSeconds)} s; " +
                            $"ran {r.RunSeconds:0.00} s; job.finished relayed after {Opt(r.RelayFinishSeconds)} s"));
                    }
                    o.WriteLine($"  parent on {sharded.ParentProcess}; spread: {Spread(sharded)}");
                }
            }
        }
        finally
        {
            RawAnsible.Remove(rawDir);
        }
        return new OverheadMeasurement(options.DatabaseName, options.AnsibleHosts, Forks, Math.Max(options.AnsibleShards, 1), servers.Count, pairs, $"{loadBefore} -> {Load()}",
            failures.Count == 0 ? null : string.Join("; ", failures));
    }

    /// <summary>Per bench server: the ansible-shard jobs its /metrics counts as finished (<c>opsgate_jobs_total</c>).</summary>
    private static async Task<Dictionary<string, double>> ShardMetricsAsync(HttpClient client, List<(string Name, ServerProcess Server)> servers, CancellationToken ct)
    {
        var counts = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, server) in servers)
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
            bound.CancelAfter(TimeSpan.FromMinutes(1));
            using var response = await client.GetAsync(new Uri(server.BaseAddress, "metrics"), bound.Token);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new BenchException($"GET /metrics of server {name} answered {(int)response.StatusCode}");
            counts[name] = ServerReadings.Sum(await response.Content.ReadAsStringAsync(bound.Token), "opsgate_jobs_total", "type=\"ansible-shard\"");
        }
        return counts;
    }

    /// <summary>Per process: shards and hosts by the workers named in the children's job.started events, and the shards its /metrics counted.</summary>
    private static string Spread(ShardedRun run) => string.Join(", ", run.MetricShards.Keys.Select(name =>
    {
        var mine = run.Shards.Where(s => s.Process == name).ToList();
        return string.Create(CultureInfo.InvariantCulture, $"{name}: {mine.Count} shards, {mine.Sum(s => s.Hosts)} hosts (metrics: {run.MetricShards[name]:0} ansible-shard jobs)");
    }).Concat(run.Shards.Where(s => !run.MetricShards.ContainsKey(s.Process)).Select(s => $"shard {s.Index} on {s.Process}")));

    private static string Opt(double? v) => v is { } x ? x.ToString("0.000", CultureInfo.InvariantCulture) : "-";

    private static async Task<LargeMeasurement> LargeAsync(BenchOptions options, TextWriter o, OpsgateApi api, string playbooks, CancellationToken ct)
    {
        var loadBefore = Load();
        var n = options.LargeHosts;
        var width = n.ToString(CultureInfo.InvariantCulture).Length;
        var range = $"node[{"1".PadLeft(width, '0')}:{n.ToString(CultureInfo.InvariantCulture)}]";
        var vars = new Dictionary<string, string>
        {
            ["ansible_connection"] = "local", ["ansible_python_interpreter"] = "/usr/bin/python3", ["bench_group_var"] = "large",
        };
        // Through the API: the hosts with the group vars given as vars (the server merges them into the group);
        // raw: the same, merged by hand.
        var hosts = RawAnsible.GroupInventory([range], null);
        var groupVars = "bench:\n" + string.Concat(vars.Select(v => $"  {v.Key}: {v.Value}\n"));
        var failures = new List<string>();

        var started = Stopwatch.GetTimestamp();
        var hostCount = await api.StoreInventoryAsync("bench-large", hosts, groupVars, ct);
        var store = Stopwatch.GetElapsedTime(started).TotalSeconds;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ansible-large: POST /api/v1/inventories ({range}, host_count {hostCount:N0}) took {store:0.00} s"));
        if (hostCount != n)
            failures.Add($"the stored inventory has {hostCount} hosts, not {n}");

        var first = await api.FirstEventThenCancelAsync("large.yml", "bench-large", options.LargeShards, options.LargeCap, ct);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ansible-large Opsgate: job {first.JobId}: first task result event {Seconds(first.FirstEventSeconds, options.LargeCap)} ({first.FirstEventType ?? "none"}); " +
            $"cancel to job.finished {(first.CancelSeconds is { } c ? c.ToString("0.00", CultureInfo.InvariantCulture) + " s" : "not seen")}, status {first.Status}; load {Load()}"));
        if (first.Status != "cancelled")
            failures.Add($"job {first.JobId} ended {first.Status}, not cancelled{(first.Error is null ? "" : ": " + first.Error)}");
        if (first.StreamProblem is not null)
            failures.Add($"job {first.JobId}: {first.StreamProblem}");

        var rawDir = RawAnsible.Prepare(RawAnsible.GroupInventory([range], vars));
        double? rawFirst;
        try
        {
            (rawFirst, var lastLines) = await RawAnsible.FirstResultAsync(rawDir, Path.Combine(playbooks, "large.yml"), Forks, options.LargeCap, ct);
            o.WriteLine($"ansible-large raw: first task result line {Seconds(rawFirst, options.LargeCap)}{(rawFirst is null ? "; its last lines: " + lastLines : "")}; load {Load()}");
        }
        finally
        {
            RawAnsible.Remove(rawDir);
        }
        return new LargeMeasurement(options.DatabaseName, n, options.LargeShards, store, first.FirstEventSeconds, first.CancelSeconds, first.Status,
            rawFirst, options.LargeCap, $"{loadBefore} -> {Load()}", failures.Count == 0 ? null : string.Join("; ", failures));
    }

    /// <summary>Null when every host of the raw recap has the same ok, changed, failed, unreachable and skipped in /hosts, and no other host is there.</summary>
    private static string? Compare(Dictionary<string, RecapLine> recap, Dictionary<string, RecapLine> hosts)
    {
        var differences = new List<string>();
        foreach (var (host, r) in recap)
        {
            if (!hosts.TryGetValue(host, out var h))
                differences.Add($"{host} missing");
            else if (h != r)
                differences.Add($"{host} raw {r} Opsgate {h}");
        }
        differences.AddRange(hosts.Keys.Where(h => !recap.ContainsKey(h)).Select(h => $"{h} not in the raw recap"));
        return differences.Count == 0 ? null : $"{differences.Count} hosts, e.g. {string.Join(", ", differences.Take(3))}";
    }

    private static string Totals(Dictionary<string, RecapLine> recap) => string.Create(CultureInfo.InvariantCulture,
        $"{recap.Count} hosts, ok={recap.Values.Sum(r => r.Ok)} changed={recap.Values.Sum(r => r.Changed)} failed={recap.Values.Sum(r => r.Failed)} unreachable={recap.Values.Sum(r => r.Unreachable)}");

    private static string Seconds(double? s, TimeSpan cap) =>
        s is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) + " s" : $"> {cap.TotalSeconds:0} s (cap)";

    private static string Last(string text) => text.Length <= 500 ? text.Trim() : "..." + text[^500..].Trim();

    private static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    /// <summary>The shard cost (penalty), how the shards spread over the processes, and the per-shard dispatch costs.</summary>
    private static void ShardTables(TextWriter o, IReadOnlyList<OverheadMeasurement> overhead)
    {
        var inv = CultureInfo.InvariantCulture;
        var sharded = overhead.Where(m => m.Pairs.Any(p => p.Sharded is not null)).ToList();
        if (sharded.Count == 0)
            return;
        o.WriteLine();
        o.WriteLine("| database | hosts | shards | processes | runs | 1 shard median s | sharded median s | penalty ratio | target | result |");
        o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var m in sharded)
        {
            o.WriteLine(string.Create(inv,
                $"| {m.Database} | {m.Hosts:N0} | {m.Shards} | {m.Processes} | {m.Pairs.Count(p => p.Sharded is not null)} | {m.OpsgateMedian:0.00} | {m.ShardedMedian:0.00} | {m.Penalty:0.000} | <= {OverheadMeasurement.MaxPenalty:0.00} | {m.PenaltyVerdict} |"));
        }
        o.WriteLine();
        o.WriteLine("| database | run | process | ran the parent | shards (job.started workers) | hosts | ansible-shard jobs on its /metrics |");
        o.WriteLine("|---|---:|---|---|---:|---:|---:|");
        foreach (var m in sharded)
        {
            foreach (var p in m.Pairs.Where(p => p.Sharded is not null))
            {
                foreach (var (name, count) in p.Sharded!.MetricShards)
                {
                    var mine = p.Sharded.Shards.Where(s => s.Process == name).ToList();
                    o.WriteLine(string.Create(inv, $"| {m.Database} | {p.Run} | {name} | {(p.Sharded.ParentProcess == name ? "yes" : "no")} | {mine.Count} | {mine.Sum(s => s.Hosts)} | {count:0} |"));
                }
            }
        }
        o.WriteLine();
        o.WriteLine("Per-shard dispatch (server timestamps, median over all shards of all runs, max in brackets): parent start -> child created (split + submit), " +
            "created -> claimed, parent start -> child's first ansible event, and the relay delay of that event and of the child's job.finished to the parent's stream.");
        o.WriteLine("| database | shards measured | submitted s | created -> claimed s | claim after a free slot s | first event s | relay first event s | relay finish s | shard run s |");
        o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var m in sharded)
        {
            var rows = m.Pairs.Where(p => p.Sharded is not null).SelectMany(p => p.Sharded!.Shards).ToList();
            string Cell(Func<ShardRow, double?> f)
            {
                var values = rows.Select(f).OfType<double>().ToList();
                return values.Count == 0 ? "-" : string.Create(inv, $"{OverheadMeasurement.Median(values):0.000} ({values.Max():0.000})");
            }
            o.WriteLine($"| {m.Database} | {rows.Count} | {Cell(r => r.SubmittedSeconds)} | {Cell(r => r.ClaimSeconds)} | {Cell(r => r.FreeSlotClaimSeconds)} | {Cell(r => r.FirstEventSeconds)} | " +
                $"{Cell(r => r.RelayFirstSeconds)} | {Cell(r => r.RelayFinishSeconds)} | {Cell(r => r.RunSeconds)} |");
        }
    }

    public static void Table(TextWriter o, Results results)
    {
        var inv = CultureInfo.InvariantCulture;
        if (results.Overhead.Count > 0)
        {
            o.WriteLine("| database | hosts | forks | run | raw s | Opsgate sandboxed (1 shard) s | ratio | unsandboxed s | ratio | shards | sharded s | penalty (sharded / 1 shard) |");
            o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var m in results.Overhead)
            {
                foreach (var p in m.Pairs)
                {
                    o.WriteLine(string.Create(inv, $"| {m.Database} | {m.Hosts:N0} | {m.Forks} | {p.Run} | {p.RawSeconds:0.00} | {p.OpsgateSeconds:0.00} | {p.Ratio:0.000} | ") +
                        (p.UnsandboxedSeconds is { } u ? string.Create(inv, $"{u:0.00} | {u / p.RawSeconds:0.000} | ") : "- | - | ") +
                        (p.Sharded is { } sh ? string.Create(inv, $"{m.Shards} | {sh.Seconds:0.00} | {sh.Seconds / p.OpsgateSeconds:0.000} |") : "- | - | - |"));
                }
            }
            o.WriteLine();
            o.WriteLine("| database | hosts | runs | raw median s | Opsgate sandboxed median s | median ratio | median of per-run ratios | unsandboxed median s | unsandboxed ratio | load (1/5/15 min, before -> after) | target (sandboxed) | result |");
            o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
            foreach (var m in results.Overhead)
            {
                var off = m.Pairs.Any(p => p.UnsandboxedSeconds is not null) ? string.Create(inv, $"{m.UnsandboxedMedian:0.00} | {m.UnsandboxedRatio:0.000} | ") : "- | - | ";
                o.WriteLine(string.Create(inv,
                    $"| {m.Database} | {m.Hosts:N0} | {m.Pairs.Count} | {m.RawMedian:0.00} | {m.OpsgateMedian:0.00} | {m.Ratio:0.000} | {OverheadMeasurement.Median(m.Pairs.Select(p => p.Ratio)):0.000} | ") +
                    off + string.Create(inv, $"{m.Load} | <= {OverheadMeasurement.MaxRatio:0.00} | {m.Verdict} |"));
            }
            ShardTables(o, results.Overhead);
            foreach (var f in results.Overhead.Where(m => m.Failure is not null))
                o.WriteLine($"ansible FAILED: {f.Failure}");
        }
        if (results.Large.Count > 0)
        {
            if (results.Overhead.Count > 0)
                o.WriteLine();
            o.WriteLine("| database | hosts | shards | store inventory s | Opsgate: submit to first task event | cancel to job.finished s | final status | raw: start to first task result line | load (before -> after) | target | result |");
            o.WriteLine("|---|---:|---|---:|---:|---:|---|---:|---|---|---|");
            foreach (var m in results.Large)
            {
                if (double.IsNaN(m.StoreSeconds)) // stopped before anything was measured
                {
                    o.WriteLine($"| {m.Database} | {m.Hosts:N0} | {m.Shards ?? "none"} | - | - | - | - | - | {m.Load} | < {LargeMeasurement.MaxFirstEventSeconds:0} s | {m.Verdict} |");
                    continue;
                }
                o.WriteLine(string.Create(inv,
                    $"| {m.Database} | {m.Hosts:N0} | {m.Shards ?? "none"} | {m.StoreSeconds:0.00} | {Seconds(m.FirstEventSeconds, m.Cap)} | " +
                    $"{(m.CancelSeconds is { } c ? c.ToString("0.00", inv) : "not seen")} | {m.FinalStatus} | {Seconds(m.RawFirstSeconds, m.Cap)} | {m.Load} | < {LargeMeasurement.MaxFirstEventSeconds:0} s | {m.Verdict} |"));
            }
            foreach (var f in results.Large.Where(m => m.Failure is not null))
                o.WriteLine($"ansible-large FAILED: {f.Failure}");
        }
    }
}

/// <summary>A finished job as its SSE client saw it: wall time from the submit to <c>job.finished</c>.</summary>
internal sealed record JobRun(string JobId, double Seconds, string Status, string? Error, long Events);

/// <param name="StreamProblem">Why job.finished was not seen after the cancel, if it was not.</param>
internal sealed record FirstEvent(string JobId, double? FirstEventSeconds, string? FirstEventType, double? CancelSeconds, string Status, string? Error, string? StreamProblem);

/// <summary>The Opsgate requests of the Ansible scenarios: store an inventory, submit and follow a job over SSE, cancel, read /hosts.</summary>
internal sealed class OpsgateApi(HttpClient client, Scenarios s, Uri baseAddress)
{
    private static readonly TimeSpan RequestLimit = TimeSpan.FromMinutes(5);

    /// <summary>How long a cancelled job may take to reach job.finished (Opsgate's default grace: 10 s after SIGINT, 5 s after SIGTERM).</summary>
    private static readonly TimeSpan CancelLimit = TimeSpan.FromMinutes(2);

    /// <summary>Stores (a new version of) an inventory; returns its expanded host count.</summary>
    public async Task<int> StoreInventoryAsync(string name, string hosts, string? vars, CancellationToken ct)
    {
        var body = new JsonObject { ["name"] = name, ["hosts"] = hosts };
        if (vars is not null)
            body["vars"] = vars;
        using var doc = await SendAsync(HttpMethod.Post, "api/v1/inventories", body, HttpStatusCode.Created, ct);
        return doc.RootElement.GetProperty("host_count").GetInt32();
    }

    /// <summary>Submits an ansible-playbook job and follows its SSE stream to <c>job.finished</c>.</summary>
    public async Task<JobRun> RunJobAsync(string playbook, string inventory, string? shards, TimeSpan limit, CancellationToken ct)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(limit);
        var started = Stopwatch.GetTimestamp();
        var id = await SubmitAsync(playbook, inventory, shards, bound.Token);
        JsonElement? finished = null;
        long events = 0;
        try
        {
            await foreach (var e in EventsAsync(id, bound.Token))
            {
                events++;
                if (e.Type == "job.finished")
                {
                    finished = e.Data;
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new BenchException($"job {id} did not finish within {limit.TotalMinutes:0} min");
        }
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (finished is null)
            throw new BenchException($"the event stream of job {id} ended without job.finished");
        var (status, error) = await StatusAsync(id, ct);
        return new JobRun(id, seconds, status, error, events);
    }

    /// <summary>
    /// Submits a job, reads its SSE stream until the first task result event (<c>ansible.runner_*</c> or <c>ansible.item_*</c>)
    /// or <paramref name="cap"/>, then cancels it and reads on until <c>job.finished</c>.
    /// </summary>
    public async Task<FirstEvent> FirstEventThenCancelAsync(string playbook, string inventory, string? shards, TimeSpan cap, CancellationToken ct)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var started = Stopwatch.GetTimestamp();
        var id = await SubmitAsync(playbook, inventory, shards, ct);
        var first = new TaskCompletionSource<(double Seconds, string Type)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = Task.Run(async () =>
        {
            await foreach (var e in EventsAsync(id, bound.Token))
            {
                if (e.Type.StartsWith("ansible.runner_", StringComparison.Ordinal) || e.Type.StartsWith("ansible.item_", StringComparison.Ordinal))
                    first.TrySetResult((Stopwatch.GetElapsedTime(started).TotalSeconds, e.Type));
                if (e.Type == "job.finished")
                {
                    finished.TrySetResult(Stopwatch.GetTimestamp());
                    return;
                }
            }
        }, bound.Token);

        double? firstSeconds = null;
        string? firstType = null;
        double? cancelSeconds = null;
        string? streamEnd = null;
        try
        {
            await Task.WhenAny(first.Task, reading, Task.Delay(cap, ct));
            if (first.Task.IsCompleted)
                (firstSeconds, firstType) = await first.Task;
            ct.ThrowIfCancellationRequested();
            var cancelAt = Stopwatch.GetTimestamp();
            using (await SendAsync(HttpMethod.Post, $"api/v1/jobs/{id}/cancel", null, HttpStatusCode.OK, ct))
            {
            }
            // The reader ends right after it set finished: which one WhenAny returns is a race, so look at finished itself.
            await Task.WhenAny(finished.Task, reading, Task.Delay(CancelLimit, ct));
            if (finished.Task.IsCompleted)
                cancelSeconds = Stopwatch.GetElapsedTime(cancelAt, await finished.Task).TotalSeconds;
            else if (reading.IsCompleted)
                streamEnd = reading.Exception?.GetBaseException().Message ?? "the event stream ended without job.finished";
            else
                streamEnd = $"no job.finished within {CancelLimit.TotalSeconds:0} s of the cancel";
        }
        finally
        {
            await bound.CancelAsync();
            try
            {
                await reading;
            }
            catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
            {
                // Stopped reading.
            }
        }
        var (status, error) = await StatusAsync(id, ct);
        return new FirstEvent(id, firstSeconds, firstType, cancelSeconds, status, error, streamEnd);
    }

    /// <summary>
    /// A finished sharded job's children, timed from the server's own timestamps: the parent's view (started_at, children),
    /// each child's view (created_at, started_at, finished_at), each child's stream (job.started names the worker; its first
    /// ansible.* event; job.finished) and the parent's stream (the relayed copies).
    /// </summary>
    /// <param name="processes">The bench servers by name and process id: a worker is named "machine/pid/..." by the server.</param>
    public async Task<(string ParentProcess, List<ShardRow> Shards)> ShardRowsAsync(string parentId, IReadOnlyList<(string Name, int Pid)> processes, CancellationToken ct)
    {
        using var parent = await SendAsync(HttpMethod.Get, $"api/v1/jobs/{parentId}", null, HttpStatusCode.OK, ct);
        var parentStarted = Time(parent.RootElement, "started_at") ?? Time(parent.RootElement, "created_at")!.Value;
        var parentEvents = await ReplayAsync(parentId, ct);
        var parentProcess = Process(parentEvents, processes);
        var children = new List<(JsonElement View, DateTime Created, DateTime Started, DateTime Finished, string Process, List<(string Type, DateTime Ts, JsonElement Data)> Events)>();
        if (parent.RootElement.TryGetProperty("children", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var c in list.EnumerateArray())
            {
                var id = c.GetProperty("job_id").GetString()!;
                using var child = await SendAsync(HttpMethod.Get, $"api/v1/jobs/{id}", null, HttpStatusCode.OK, ct);
                var created = Time(child.RootElement, "created_at")!.Value;
                var started = Time(child.RootElement, "started_at") ?? created;
                var events = await ReplayAsync(id, ct);
                children.Add((c.Clone(), created, started, Time(child.RootElement, "finished_at") ?? started, Process(events, processes), events));
            }
        }
        var rows = new List<ShardRow>();
        foreach (var (c, created, started, finished, process, events) in children)
        {
            var id = c.GetProperty("job_id").GetString()!;
            // Finish times within 50 ms after its start count as before it: finished_at is taken just before the commit that frees the slot.
            var slotFreed = children.Where(o => o.Process == process && o.View.GetProperty("job_id").GetString() != id && o.Finished <= started.AddMilliseconds(50))
                .Select(o => o.Finished).Append(created).Max();
            var firstChild = events.FirstOrDefault(e => e.Type.StartsWith("ansible.", StringComparison.Ordinal));
            var childFinished = events.FirstOrDefault(e => e.Type == "job.finished");
            var mine = parentEvents.Where(e => e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("shard_job", out var j) && j.GetString() == id).ToList();
            var firstRelayed = mine.FirstOrDefault(e => e.Type != "ansible.shard_finished");
            var shardFinished = mine.FirstOrDefault(e => e.Type == "ansible.shard_finished");
            rows.Add(new ShardRow(
                c.GetProperty("shard_index").GetInt32(), id, c.GetProperty("hosts").GetInt32(), c.GetProperty("status").GetString()!, process,
                (created - parentStarted).TotalSeconds, (started - created).TotalSeconds, Math.Max(0, (started - slotFreed).TotalSeconds),
                firstChild.Type is null ? null : (firstChild.Ts - parentStarted).TotalSeconds,
                firstChild.Type is null || firstRelayed.Type is null ? null : (firstRelayed.Ts - firstChild.Ts).TotalSeconds,
                childFinished.Type is null || shardFinished.Type is null ? null : (shardFinished.Ts - childFinished.Ts).TotalSeconds,
                (finished - started).TotalSeconds));
        }
        return (parentProcess, rows);
    }

    /// <summary>Which bench server ran a job: the worker its job.started event names ("machine/pid/..."), by process id.</summary>
    private static string Process(List<(string Type, DateTime Ts, JsonElement Data)> events, IReadOnlyList<(string Name, int Pid)> processes)
    {
        var worker = events.FirstOrDefault(e => e.Type == "job.started").Data is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("worker", out var w)
            ? w.GetString() ?? "" : "";
        var pid = worker.Split('/') is { Length: >= 2 } parts ? parts[1] : "";
        return processes.FirstOrDefault(p => p.Pid.ToString(CultureInfo.InvariantCulture) == pid).Name ?? $"worker '{worker}'";
    }

    /// <summary>A finished job's whole stream, from its first event to job.finished.</summary>
    private async Task<List<(string Type, DateTime Ts, JsonElement Data)>> ReplayAsync(string id, CancellationToken ct)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(RequestLimit);
        var events = new List<(string Type, DateTime Ts, JsonElement Data)>();
        await foreach (var e in EventsAsync(id, bound.Token))
        {
            events.Add(e);
            if (e.Type == "job.finished")
                break;
        }
        return events;
    }

    private static DateTime? Time(JsonElement item, string name) =>
        item.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? ParseTime(v.GetString()!) : null;

    private static DateTime ParseTime(string s) => DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);

    /// <summary>GET /api/v1/jobs/{id}/hosts: per host ok, changed, unreachable, failed, skipped.</summary>
    public async Task<Dictionary<string, RecapLine>> HostsAsync(string id, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, $"api/v1/jobs/{id}/hosts", null, HttpStatusCode.OK, ct);
        var hosts = new Dictionary<string, RecapLine>(StringComparer.Ordinal);
        foreach (var host in doc.RootElement.EnumerateObject())
        {
            var st = host.Value.GetProperty("stats");
            int N(string name) => st.GetProperty(name).GetInt32();
            hosts[host.Name] = new RecapLine(N("ok"), N("changed"), N("unreachable"), N("failed"), N("skipped"));
        }
        return hosts;
    }

    private async Task<string> SubmitAsync(string playbook, string inventory, string? shards, CancellationToken ct)
    {
        var parameters = new JsonObject { ["playbook"] = playbook, ["inventory"] = inventory, ["forks"] = AnsibleBench.Forks };
        if (shards is not null)
            parameters["shards"] = int.TryParse(shards, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? JsonValue.Create(n) : JsonValue.Create(shards);
        using var doc = await SendAsync(HttpMethod.Post, "api/v1/jobs", new JsonObject { ["type"] = "ansible-playbook", ["params"] = parameters }, HttpStatusCode.Created, ct);
        return doc.RootElement.GetProperty("job_id").GetString()!;
    }

    private async Task<(string Status, string? Error)> StatusAsync(string id, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, $"api/v1/jobs/{id}", null, HttpStatusCode.OK, ct);
        var root = doc.RootElement;
        return (root.GetProperty("status").GetString()!, root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null);
    }

    private async Task<JsonDocument> SendAsync(HttpMethod method, string path, JsonObject? body, HttpStatusCode expected, CancellationToken ct)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(RequestLimit);
        var uri = new Uri(baseAddress, path);
        using var request = body is null ? s.Authenticated(method, uri) : s.AuthenticatedJson(method, uri, Encoding.UTF8.GetBytes(body.ToJsonString()));
        using var response = await client.SendAsync(request, bound.Token);
        var content = await response.Content.ReadAsByteArrayAsync(bound.Token);
        if (response.StatusCode != expected)
            throw new BenchException($"{method} /{path} answered {(int)response.StatusCode}, expected {(int)expected}: {Encoding.UTF8.GetString(content)}");
        return JsonDocument.Parse(content);
    }

    /// <summary>The job's SSE stream from its first event: (type, the server's timestamp, the event's own data) per event, until the server ends it.</summary>
    private async IAsyncEnumerable<(string Type, DateTime Ts, JsonElement Data)> EventsAsync(string id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using var request = s.Authenticated(HttpMethod.Get, new Uri(baseAddress, $"api/v1/jobs/{id}/events"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new BenchException($"GET /api/v1/jobs/{id}/events answered {(int)response.StatusCode}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var type = "";
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
                type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                using var doc = JsonDocument.Parse(line[6..]);
                var root = doc.RootElement;
                var ts = root.TryGetProperty("ts", out var t) && t.ValueKind == JsonValueKind.String ? ParseTime(t.GetString()!) : default;
                yield return (type, ts, root.TryGetProperty("data", out var data) ? data.Clone() : default);
            }
        }
    }
}
