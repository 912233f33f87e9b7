using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Opsgate.Bench;

/// <summary>One round of the kube scenario: the same scale sent directly to KubeSim, through the bare forwarder, then through Opsgate.</summary>
/// <param name="Forwarder">The same scale through <see cref="BareForwarder"/>: what any HTTP hop in front of KubeSim adds here.</param>
/// <param name="ForwarderCpuUsPerRequest">The forwarder process's CPU time over its run, warm-up included, per scale request sent.</param>
/// <param name="CpuUsPerRequest">The Opsgate process's CPU time (process_cpu_seconds_total) over its run, warm-up included, per scale request sent.</param>
/// <param name="Split">Where the Opsgate leg's time went, from the server's own histograms.</param>
/// <param name="Paced">Direct and through Opsgate again at one paced rate (<c>--kube-paced</c>), when asked for.</param>
internal sealed record KubeMeasurement(
    string Database, int Round, LoadResult Direct, LoadResult Forwarder, LoadResult Opsgate, double ForwarderCpuUsPerRequest, double CpuUsPerRequest,
    TimeSplit Split, PacedKube? Paced, string? Failure)
{
    /// <summary>The issue's target: Opsgate adds at most 1 ms at p50 and keeps at least half the direct throughput.</summary>
    public const double MaxAddedP50Ms = 1.0;
    public const double MinRatio = 0.5;

    public double Ratio => Opsgate.PerSecond / Direct.PerSecond;
    public double AddedP50Ms => Opsgate.All.P50Ms - Direct.All.P50Ms;
    public double ForwarderRatio => Forwarder.PerSecond / Direct.PerSecond;
    public double ForwarderAddedP50Ms => Forwarder.All.P50Ms - Direct.All.P50Ms;
    public bool Met => AddedP50Ms <= MaxAddedP50Ms && Ratio >= MinRatio;

    public string Verdict => Failure is not null ? "FAILED"
        : Met ? "met"
        : "missed (" + string.Join(", ", new[] { AddedP50Ms > MaxAddedP50Ms ? "p50" : null, Ratio < MinRatio ? "rate" : null }.Where(x => x is not null)) + ")";
}

/// <summary>
/// Both paths at the same offered load, below what either can take: the latency Opsgate adds when the 2 cores are not
/// saturated by the 32 closed-loop clients (where the added p50 only restates the rate ratio: about 32 clients / rate).
/// </summary>
/// <param name="PerSecond">The rate asked for, shared by the clients: <c>--kube-paced</c> percent of the round's direct rate.</param>
internal sealed record PacedKube(double PerSecond, LoadResult Direct, LoadResult Opsgate, TimeSplit Split)
{
    public double AddedP50Ms => Opsgate.All.P50Ms - Direct.All.P50Ms;
    public double AddedP99Ms => Opsgate.All.P99Ms - Direct.All.P99Ms;

    /// <summary>Whether both paths kept the rate asked for (within 5%): if not, that path was saturated after all.</summary>
    public bool KeptUp => Direct.PerSecond >= 0.95 * PerSecond && Opsgate.PerSecond >= 0.95 * PerSecond;
}

/// <summary>
/// Mean milliseconds per scale request over one Opsgate leg (its warm-up included), from the differences of the server's
/// histograms: its whole handling (<c>http_request_duration_seconds</c> of the route), the cluster's answers
/// (<c>opsgate_cluster_call_duration_seconds</c>) and the wait for the audit commit (<c>opsgate_audit_wait_seconds</c>).
/// </summary>
internal sealed record TimeSplit(double ServerMs, double ClusterMs, double AuditMs)
{
    private const string Route = "endpoint=\"/api/v1/clusters/{cluster}/namespaces/{namespace}/deployments/{name}/scale\"";

    /// <summary>What is left: Opsgate's own work. The three means are over the same requests only when none was refused before its cluster call (a round with errors is FAILED anyway).</summary>
    public double OwnMs => ServerMs - ClusterMs - AuditMs;

    public static TimeSplit Between(string before, string after) => new(
        Mean(before, after, "http_request_duration_seconds", Route),
        Mean(before, after, "opsgate_cluster_call_duration_seconds", "action=\"k8s.scale\""),
        Mean(before, after, "opsgate_audit_wait_seconds"));

    private static double Mean(string before, string after, string histogram, params string[] labels)
    {
        var count = ServerReadings.Sum(after, histogram + "_count", labels) - ServerReadings.Sum(before, histogram + "_count", labels);
        var sum = ServerReadings.Sum(after, histogram + "_sum", labels) - ServerReadings.Sum(before, histogram + "_sum", labels);
        return count > 0 ? sum * 1000 / count : double.NaN;
    }
}

/// <summary>
/// The kube scenario (issue 3): an audited <c>POST /api/v1/clusters/{c}/namespaces/prod/deployments/web/scale</c>
/// through Opsgate against the same merge patch of the scale subresource sent straight to KubeSim, which runs as
/// its own process. The direct run is measured just before each Opsgate run and is its baseline. Between them the same
/// scale goes through <see cref="BareForwarder"/>, the floor for any gateway on this machine.
/// </summary>
internal sealed class KubeBench(BenchOptions options, Scenarios s, ServerReadings readings, Uri opsgate, KubeSimProcess sim, BareForwarder forwarder)
{
    public const string Cluster = "bench";
    private static readonly MediaTypeHeaderValue MergePatch = new("application/merge-patch+json");

    private readonly Uri _direct = new(sim.BaseAddress, $"apis/apps/v1/namespaces/{KubeSimProcess.Namespace}/deployments/{KubeSimProcess.Deployment}/scale");
    private readonly Uri _forwarded = new(forwarder.BaseAddress, "scale");
    private readonly Uri _through = new(opsgate, $"api/v1/clusters/{Cluster}/namespaces/{KubeSimProcess.Namespace}/deployments/{KubeSimProcess.Deployment}/scale");
    private long _counter;
    private long _opsgateSent;
    private long _forwardedSent;

    public static string Describe(BenchOptions options) =>
        $"kube: direct = PATCH <kubesim>/apis/apps/v1/namespaces/prod/deployments/web/scale (merge patch) to KubeSim; " +
        $"through Opsgate = POST /api/v1/clusters/{Cluster}/namespaces/prod/deployments/web/scale with X-API-Key (admin), audited; " +
        "bare forwarder = POST {\"replicas\":N} to a minimal ASP.NET Core process (this program's bare-forwarder mode: no auth, audit, database or metrics) that sends the direct run's PATCH to KubeSim; " +
        (options.KubeAlternate
            ? "replicas alternate 2, 3, 2, ... across all requests (every request changes the deployment, so KubeSim's controller creates and deletes pods in both runs)"
            : "replicas always 2 (no request changes the deployment; KubeSim's controller stays idle)") +
        (options.KubePacedPercent > 0
            ? $"; then direct and through Opsgate again, paced: the {options.Concurrency} clients share a rate of {options.KubePacedPercent}% of the round's direct rate"
            : "");

    /// <summary>Registers KubeSim with Opsgate as cluster <see cref="Cluster"/>, allowed namespace prod.</summary>
    /// <returns>The cluster's status as Opsgate probed it at registration ("connected" when KubeSim answered).</returns>
    public static async Task<string> RegisterAsync(HttpClient slow, Scenarios s, Uri opsgate, KubeSimProcess sim, CancellationToken ct)
    {
        var kubeconfig = Convert.ToBase64String(Encoding.UTF8.GetBytes(sim.Kubeconfig));
        var body = Encoding.UTF8.GetBytes($$"""{"name":"{{Cluster}}","kubeconfig":"{{kubeconfig}}","allowed_namespaces":["{{KubeSimProcess.Namespace}}"]}""");
        using var request = s.AuthenticatedJson(HttpMethod.Post, new Uri(opsgate, "api/v1/clusters"), body);
        using var response = await slow.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.Created)
            throw new BenchException($"POST /api/v1/clusters answered {(int)response.StatusCode}: {text}");
        using var doc = System.Text.Json.JsonDocument.Parse(text);
        var status = doc.RootElement.GetProperty("status").GetString() ?? "";
        if (status != "connected")
            throw new BenchException($"Opsgate registered KubeSim but could not reach it: {text}");
        return status;
    }

    private int NextReplicas() => options.KubeAlternate ? 2 + (int)(Interlocked.Increment(ref _counter) & 1) : 2;

    public Task Direct(Worker w, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes("{\"spec\":{\"replicas\":" + NextReplicas().ToString(CultureInfo.InvariantCulture) + "}}");
        return s.SendAsync(w, 0, () => new HttpRequestMessage(HttpMethod.Patch, _direct)
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = MergePatch } },
        }, HttpStatusCode.OK, ct);
    }

    public Task Forwarded(Worker w, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes($$"""{"replicas":{{NextReplicas().ToString(CultureInfo.InvariantCulture)}}}""");
        return s.SendAsync(w, 0, () =>
        {
            Interlocked.Increment(ref _forwardedSent);
            return new HttpRequestMessage(HttpMethod.Post, _forwarded)
            {
                Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
            };
        }, HttpStatusCode.OK, ct);
    }

    public Task ThroughOpsgate(Worker w, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes($$"""{"replicas":{{NextReplicas().ToString(CultureInfo.InvariantCulture)}}}""");
        return s.SendAsync(w, 0, () =>
        {
            Interlocked.Increment(ref _opsgateSent);
            return s.AuthenticatedJson(HttpMethod.Post, _through, body);
        }, HttpStatusCode.OK, ct);
    }

    /// <summary>
    /// Both paths under load, unmeasured, before the first round: the server JIT-compiles its request path to the optimized
    /// tier only after some thousands of calls, and a round measured before that shows the compiler, not Opsgate.
    /// </summary>
    public async Task WarmUpAsync(TextWriter o, CancellationToken ct)
    {
        var time = TimeSpan.FromSeconds(Math.Max(8, 2 * options.Warmup.TotalSeconds));
        var direct = await LoadRunner.RunAsync(Direct, 1, options.Concurrency, time, options.MaxRequests, ct);
        var forwarded = await LoadRunner.RunAsync(Forwarded, 1, options.Concurrency, time, options.MaxRequests, ct);
        var through = await LoadRunner.RunAsync(ThroughOpsgate, 1, options.Concurrency, time, options.MaxRequests, ct);
        var errors = direct.Errors + forwarded.Errors + through.Errors;
        o.WriteLine($"kube warm-up: {direct.Requests:N0} direct, {forwarded.Requests:N0} through the bare forwarder and {through.Requests:N0} through Opsgate in {time.TotalSeconds:0} s each, {errors} errors");
        if (errors > 0)
            throw new BenchException($"kube warm-up: {errors} failed requests, the first: {direct.FirstError ?? forwarded.FirstError ?? through.FirstError}");
    }

    public async Task<KubeMeasurement> MeasureAsync(TextWriter o, int round, CancellationToken ct)
    {
        var (directWarmup, direct) = await LoadRunner.RunWithWarmupAsync(options, Direct, 1, ct);
        o.WriteLine($"round {round} kube direct: {Report.Line(direct)}");
        var (forwarderCpuBefore, forwardedBefore) = (forwarder.CpuTime, Interlocked.Read(ref _forwardedSent));
        var (forwardedWarmup, forwarded) = await LoadRunner.RunWithWarmupAsync(options, Forwarded, 1, ct);
        var forwarderCpuUs = (forwarder.CpuTime - forwarderCpuBefore).TotalMicroseconds / Math.Max(1, Interlocked.Read(ref _forwardedSent) - forwardedBefore);
        o.WriteLine($"round {round} kube through the bare forwarder: {Report.Line(forwarded)}");

        var auditBefore = await s.LatestAuditIdAsync(ct);
        var sentBefore = Interlocked.Read(ref _opsgateSent);
        var metricsBefore = await readings.MetricsAsync(ct);
        var (warmup, through) = await LoadRunner.RunWithWarmupAsync(options, ThroughOpsgate, 1, ct);
        var metricsAfter = await readings.MetricsAsync(ct);
        var cpu = ServerReadings.Sum(metricsAfter, "process_cpu_seconds_total") - ServerReadings.Sum(metricsBefore, "process_cpu_seconds_total");
        var cpuUs = cpu * 1e6 / Math.Max(1, Interlocked.Read(ref _opsgateSent) - sentBefore);
        var split = TimeSplit.Between(metricsBefore, metricsAfter);
        o.WriteLine($"round {round} kube through Opsgate: {Report.Line(through)}");
        o.WriteLine(SplitLine(split, direct, through));

        var legs = new List<(string, LoadResult?)>
        {
            ("direct warm-up", directWarmup), ("direct", direct), ("forwarder warm-up", forwardedWarmup), ("bare forwarder", forwarded), ("Opsgate warm-up", warmup), ("through Opsgate", through),
        };
        PacedKube? paced = null;
        if (options.KubePacedPercent > 0)
        {
            var rate = direct.PerSecond * options.KubePacedPercent / 100;
            var (pacedDirectWarmup, pacedDirect) = await LoadRunner.RunWithWarmupAsync(options, Direct, 1, ct, perSecond: rate);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round} kube direct, paced at {rate:N0}/s: {Report.Line(pacedDirect)}"));
            var pacedBefore = await readings.MetricsAsync(ct);
            var (pacedWarmup, pacedThrough) = await LoadRunner.RunWithWarmupAsync(options, ThroughOpsgate, 1, ct, perSecond: rate);
            var pacedSplit = TimeSplit.Between(pacedBefore, await readings.MetricsAsync(ct));
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round} kube through Opsgate, paced at {rate:N0}/s: {Report.Line(pacedThrough)}"));
            o.WriteLine(SplitLine(pacedSplit, pacedDirect, pacedThrough));
            paced = new PacedKube(rate, pacedDirect, pacedThrough, pacedSplit);
            legs.AddRange([("paced direct warm-up", pacedDirectWarmup), ("paced direct", pacedDirect), ("paced Opsgate warm-up", pacedWarmup), ("paced through Opsgate", pacedThrough)]);
        }

        var failures = new List<string>();
        foreach (var (what, r) in legs)
        {
            if (r?.Errors > 0)
                failures.Add($"{what}: {r.Errors} failed requests, the first: {r.FirstError}");
        }
        var verify = await s.VerifyAsync(ct);
        var added = await s.LatestAuditIdAsync(ct) - auditBefore;
        var sent = Interlocked.Read(ref _opsgateSent) - sentBefore;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  CPU per scale request (warm-ups included): Opsgate {cpuUs:0} us, bare forwarder {forwarderCpuUs:0} us"));
        o.WriteLine($"  audit: {added:N0} entries added for {sent:N0} scale requests through Opsgate (warm-up included); verify: ok={verify.Ok}, {verify.Entries:N0} entries{(verify.Reason is null ? "" : ", " + verify.Reason)}");
        if (!verify.Ok)
            failures.Add($"GET /api/v1/audit/verify is not ok: {verify.Reason}");
        if (added != sent)
            failures.Add($"the audit log grew by {added} entries for {sent} scale requests");
        return new KubeMeasurement(options.DatabaseName, round, direct, forwarded, through, forwarderCpuUs, cpuUs, split, paced, failures.Count == 0 ? null : string.Join("; ", failures));
    }

    private static string SplitLine(TimeSplit split, LoadResult direct, LoadResult through) => string.Create(CultureInfo.InvariantCulture,
        $"  means per scale (server's histograms, warm-up included): in Opsgate {split.ServerMs:0.00} ms, of which KubeSim's answers {split.ClusterMs:0.00} ms " +
        $"and the audit commit wait {split.AuditMs:0.00} ms; the clients saw {through.All.MeanMs:0.00} ms through Opsgate and {direct.All.MeanMs:0.00} ms direct");

    private static string SplitRow(KubeMeasurement m, string load, LoadResult direct, LoadResult through, TimeSplit split) => string.Create(CultureInfo.InvariantCulture,
        $"| {m.Database} | {m.Round} | {load} | {direct.All.MeanMs:0.00} | {through.All.MeanMs:0.00} | {split.ServerMs:0.00} | {split.ClusterMs:0.00} | {split.AuditMs:0.00} | {split.OwnMs:0.00} |");

    public static void Table(TextWriter o, IReadOnlyList<KubeMeasurement> measurements)
    {
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine("| database | round | direct req/s | direct p50 ms | direct p99 ms | forwarder req/s | forwarder ratio | forwarder added p50 ms | forwarder CPU us/req | Opsgate req/s | Opsgate p50 ms | Opsgate p99 ms | ratio | added p50 ms | added p99 ms | server CPU us/req | target | result |");
        o.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var m in measurements)
        {
            o.WriteLine(string.Create(inv,
                $"| {m.Database} | {m.Round} | {m.Direct.PerSecond:N0} | {m.Direct.All.P50Ms:0.00} | {m.Direct.All.P99Ms:0.00} | " +
                $"{m.Forwarder.PerSecond:N0} | {m.ForwarderRatio:0.000} | {m.ForwarderAddedP50Ms:0.00} | {m.ForwarderCpuUsPerRequest:0} | " +
                $"{m.Opsgate.PerSecond:N0} | {m.Opsgate.All.P50Ms:0.00} | {m.Opsgate.All.P99Ms:0.00} | {m.Ratio:0.000} | {m.AddedP50Ms:0.00} | " +
                $"{m.Opsgate.All.P99Ms - m.Direct.All.P99Ms:0.00} | {m.CpuUsPerRequest:0} | added p50 <= 1 ms, ratio >= 0.5 | {m.Verdict} |"));
        }
        foreach (var f in measurements.Where(m => m.Failure is not null))
            o.WriteLine($"kube round {f.Round} FAILED: {f.Failure}");

        o.WriteLine();
        o.WriteLine("Where the time went, means per scale request in ms (the server's histograms over each Opsgate leg, warm-up included; the clients' means over the measured part):");
        o.WriteLine("| database | round | load | clients, direct | clients, through Opsgate | in Opsgate | KubeSim's answers to Opsgate | audit commit wait | Opsgate's own |");
        o.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var m in measurements)
        {
            o.WriteLine(SplitRow(m, "closed loop", m.Direct, m.Opsgate, m.Split));
            if (m.Paced is { } p)
                o.WriteLine(SplitRow(m, string.Create(inv, $"paced, {p.PerSecond:N0}/s"), p.Direct, p.Opsgate, p.Split));
        }

        var paced = measurements.Where(m => m.Paced is not null).ToList();
        if (paced.Count == 0)
            return;
        o.WriteLine();
        o.WriteLine("At one paced rate (the clients share it; a share of the round's direct rate), not saturating the cores:");
        o.WriteLine("| database | round | rate asked req/s | direct req/s | direct p50 ms | direct p99 ms | Opsgate req/s | Opsgate p50 ms | Opsgate p99 ms | added p50 ms | added p99 ms | both kept the rate |");
        o.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var m in paced)
        {
            var p = m.Paced!;
            o.WriteLine(string.Create(inv,
                $"| {m.Database} | {m.Round} | {p.PerSecond:N0} | {p.Direct.PerSecond:N0} | {p.Direct.All.P50Ms:0.00} | {p.Direct.All.P99Ms:0.00} | " +
                $"{p.Opsgate.PerSecond:N0} | {p.Opsgate.All.P50Ms:0.00} | {p.Opsgate.All.P99Ms:0.00} | {p.AddedP50Ms:0.00} | {p.AddedP99Ms:0.00} | {(p.KeptUp ? "yes" : "no")} |"));
        }
    }
}
