using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Opsgate.Bench;

/// <summary>One raw/Opsgate pair of the overhead scenario; seconds are wall time as the client sees it.</summary>
internal sealed record OverheadPair(int Run, double RawSeconds, double OpsgateSeconds, string JobId)
{
    public double Ratio => OpsgateSeconds / RawSeconds;
}

internal sealed record OverheadMeasurement(string Database, int Hosts, int Forks, IReadOnlyList<OverheadPair> Pairs, string Load, string? Failure)
{
    public const double MaxRatio = 1.05;

    public double RawMedian => Median(Pairs.Select(p => p.RawSeconds));
    public double OpsgateMedian => Median(Pairs.Select(p => p.OpsgateSeconds));

    /// <summary>The target's figure: the median Opsgate wall time over the median raw wall time.</summary>
    public double Ratio => OpsgateMedian / RawMedian;

    public string Verdict => Failure is not null ? "FAILED" : Pairs.Count == 0 ? "no runs" : Ratio <= MaxRatio ? "met" : "missed";

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
                "(1 shard; POST /api/v1/jobs to job.finished on its SSE stream), alternating, after one unmeasured run of each over 2 hosts; target median Opsgate / median raw <= 1.05");
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
            await using var server = await ServerProcess.StartAsync(options, http, ct, "--Ansible:PlaybookDirectory=" + playbooks);
            o.WriteLine($"ansible server pid {server.ProcessId} at {server.BaseAddress}, Ansible:PlaybookDirectory={playbooks}");
            var api = new OpsgateApi(client, new Scenarios(client, client, server.BaseAddress, server.AdminKey), server.BaseAddress);
            // A refused request or a run over its limit fails that scenario, not the whole benchmark.
            if (options.Runs("ansible"))
            {
                try
                {
                    overhead.Add(await OverheadAsync(options, o, api, playbooks, ct));
                }
                catch (BenchException e)
                {
                    o.WriteLine($"ansible FAILED: {e.Message}");
                    overhead.Add(new OverheadMeasurement(options.DatabaseName, options.AnsibleHosts, Forks, [], Load(), e.Message));
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

    private static async Task<OverheadMeasurement> OverheadAsync(BenchOptions options, TextWriter o, OpsgateApi api, string playbooks, CancellationToken ct)
    {
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
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ansible warm-up (2 hosts, unmeasured): raw {raw.Seconds:0.00} s (exit {raw.ExitCode}), Opsgate {job.Seconds:0.00} s ({job.Status})"));
        }
        finally
        {
            RawAnsible.Remove(rawDir);
        }

        var inventory = Inventory(options.AnsibleHosts);
        await api.StoreInventoryAsync("bench-overhead", inventory, null, ct);
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

                var pair = new OverheadPair(run, raw.Seconds, job.Seconds, job.JobId);
                pairs.Add(pair);
                o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ansible run {run}: raw {pair.RawSeconds:0.00} s, Opsgate {pair.OpsgateSeconds:0.00} s (job {job.JobId}, {job.Events:N0} events), ratio {pair.Ratio:0.000}; " +
                    $"recap {Totals(recap)}; /hosts {(mismatch is null ? "equal" : "DIFFERENT")}; load {Load()}"));
            }
        }
        finally
        {
            RawAnsible.Remove(rawDir);
        }
        return new OverheadMeasurement(options.DatabaseName, options.AnsibleHosts, Forks, pairs, $"{loadBefore} -> {Load()}",
            failures.Count == 0 ? null : string.Join("; ", failures));
    }

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

    public static void Table(TextWriter o, Results results)
    {
        var inv = CultureInfo.InvariantCulture;
        if (results.Overhead.Count > 0)
        {
            o.WriteLine("| database | hosts | forks | run | raw s | Opsgate s | ratio |");
            o.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var m in results.Overhead)
            {
                foreach (var p in m.Pairs)
                    o.WriteLine(string.Create(inv, $"| {m.Database} | {m.Hosts:N0} | {m.Forks} | {p.Run} | {p.RawSeconds:0.00} | {p.OpsgateSeconds:0.00} | {p.Ratio:0.000} |"));
            }
            o.WriteLine();
            o.WriteLine("| database | hosts | runs | raw median s | Opsgate median s | median ratio | median of per-run ratios | load (1/5/15 min, before -> after) | target | result |");
            o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|---|---|");
            foreach (var m in results.Overhead)
            {
                o.WriteLine(string.Create(inv,
                    $"| {m.Database} | {m.Hosts:N0} | {m.Pairs.Count} | {m.RawMedian:0.00} | {m.OpsgateMedian:0.00} | {m.Ratio:0.000} | {OverheadMeasurement.Median(m.Pairs.Select(p => p.Ratio)):0.000} | " +
                    $"{m.Load} | <= {OverheadMeasurement.MaxRatio:0.00} | {m.Verdict} |"));
            }
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

    /// <summary>The job's SSE stream from its first event: (type, the event's own data) per event, until the server ends it.</summary>
    private async IAsyncEnumerable<(string Type, JsonElement Data)> EventsAsync(string id, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
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
                yield return (type, doc.RootElement.GetProperty("data").Clone());
            }
        }
    }
}
