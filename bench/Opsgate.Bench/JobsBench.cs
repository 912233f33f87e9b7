using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Opsgate.Bench;

/// <summary>Percentiles (nearest rank) of a set of durations in milliseconds.</summary>
internal sealed record Spread(int Count, double P50Ms, double P99Ms, double MaxMs)
{
    public static Spread From(IEnumerable<double> ms)
    {
        var all = ms.ToArray();
        if (all.Length == 0)
            return new Spread(0, double.NaN, double.NaN, double.NaN);
        Array.Sort(all);
        double At(double p) => all[Math.Max(0, (int)Math.Ceiling(p * all.Length) - 1)];
        return new Spread(all.Length, At(0.50), At(0.99), all[^1]);
    }
}

/// <param name="JobsPerSecond">Finished jobs / (last finished_at - first created_at), server clock.</param>
/// <param name="ClientSeconds">From the first submit sent to the poll that saw the last job finished (an upper bound).</param>
/// <param name="HistogramP50">The server's opsgate_job_start_latency_seconds for this run: the bucket bound that holds the median, as text.</param>
internal sealed record JobsMeasurement(
    string Database, int Round, int Jobs, LoadResult Submit, double Seconds, double JobsPerSecond, double ClientSeconds, Spread StartLatency,
    string HistogramP50, string HistogramP99, string HistogramBuckets, LoadResult Baseline, double CpuMsPerJob, string? Failure)
{
    public const double MinJobsPerSecond = 1_000;
    public const double MaxStartP50Ms = 10;

    /// <summary>Jobs per second over the baseline's audited mutations per second.</summary>
    public double Ratio => JobsPerSecond / Baseline.PerSecond;

    public string Verdict => Failure is not null ? "FAILED"
        : JobsPerSecond >= MinJobsPerSecond && StartLatency.P50Ms < MaxStartP50Ms ? "met"
        : "missed (" + string.Join(", ", new[] { JobsPerSecond < MinJobsPerSecond ? "rate" : null, StartLatency.P50Ms >= MaxStartP50Ms ? "start p50" : null }.Where(x => x is not null)) + ")";
}

/// <summary>
/// The jobs scenario (issue 4a): N trivial jobs (the built-in <c>noop</c> runbook, one step that does nothing)
/// submitted by M closed-loop clients; the server runs them with its default worker count. Measured end to end
/// from the server's own timestamps, read back through the API after the run, and checked: every job succeeded,
/// on its first attempt, and the audit log grew by exactly five entries per job (submit, job start, step start,
/// step finish, job finish) and still verifies. The baseline, measured just before with the same clients, is the
/// audited mutation (POST then DELETE /api/v1/apikeys) of the foundation scenario.
/// </summary>
internal sealed class JobsBench(BenchOptions options, Scenarios s, ServerReadings readings, Uri opsgate)
{
    private const int AuditEntriesPerJob = 5;
    private static readonly TimeSpan FinishTimeout = TimeSpan.FromMinutes(5);

    private readonly Uri _jobs = new(opsgate, "api/v1/jobs");
    private readonly byte[] _body = Encoding.UTF8.GetBytes("""{"type":"noop","params":{"message":"x"}}""");
    private ConcurrentBag<string> _ids = [];

    public static string Describe(BenchOptions options) =>
        $"jobs: {options.Jobs:N0} jobs of the built-in noop runbook, POST /api/v1/jobs by {options.JobClients} closed-loop clients, " +
        $"the server's default Jobs:Workers; rate = jobs / (last finished_at - first created_at), start latency = started_at - created_at per job (server clock); " +
        $"baseline: audited mutations (POST+DELETE /api/v1/apikeys) by the same {options.JobClients} clients just before";

    private async Task Submit(Worker w, CancellationToken ct)
    {
        var content = await s.SendAsync(w, 0, () => s.AuthenticatedJson(HttpMethod.Post, _jobs, _body), HttpStatusCode.Created, ct);
        if (content is not null)
        {
            using var doc = JsonDocument.Parse(content);
            _ids.Add(doc.RootElement.GetProperty("job_id").GetString()!);
        }
    }

    /// <summary>Submits <paramref name="jobs"/> jobs (rounded down to a multiple of the clients) and waits for all of them to finish.</summary>
    private async Task<(LoadResult Submit, double ClientSeconds)> RunJobsAsync(int jobs, CancellationToken ct)
    {
        _ids = [];
        var before = ServerReadings.Sum(await readings.MetricsAsync(ct), "opsgate_jobs_total", "type=\"noop\"");
        var started = Stopwatch.GetTimestamp();
        var submit = await LoadRunner.RunAsync(Submit, 1, options.JobClients, FinishTimeout, jobs, ct);
        var expected = before + _ids.Count;
        var deadline = started + (long)(FinishTimeout.TotalSeconds * Stopwatch.Frequency);
        while (ServerReadings.Sum(await readings.MetricsAsync(ct), "opsgate_jobs_total", "type=\"noop\"") < expected)
        {
            if (Stopwatch.GetTimestamp() > deadline)
                throw new BenchException($"the jobs did not all finish within {FinishTimeout.TotalMinutes} minutes");
            await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
        }
        return (submit, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>The last job's closing audit entry is written just after it is counted as finished: wait for the log to settle.</summary>
    private async Task<long> WaitForAuditAsync(long target, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
        long latest;
        while ((latest = await s.LatestAuditIdAsync(ct)) < target && Stopwatch.GetTimestamp() < deadline)
            await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
        await Task.Delay(TimeSpan.FromMilliseconds(200), ct); // anything beyond the target would show now
        return await s.LatestAuditIdAsync(ct);
    }

    /// <summary>Unmeasured jobs first, so the measured ones do not pay for JIT compilation of the engine.</summary>
    public async Task WarmUpAsync(TextWriter o, CancellationToken ct)
    {
        var jobs = Math.Max(options.JobClients, Math.Min(3_000, options.Jobs * 3 / 10));
        var auditBefore = await s.LatestAuditIdAsync(ct);
        var (submit, seconds) = await RunJobsAsync(jobs, ct);
        await WaitForAuditAsync(auditBefore + AuditEntriesPerJob * _ids.Count, ct);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"jobs warm-up: {_ids.Count:N0} jobs in {seconds:0.0} s, {submit.Errors} errors"));
        if (submit.Errors > 0)
            throw new BenchException($"jobs warm-up: {submit.Errors} failed submits, the first: {submit.FirstError}");
    }

    public async Task<JobsMeasurement> MeasureAsync(TextWriter o, int round, CancellationToken ct)
    {
        var (baselineWarmup, baseline) = await LoadRunner.RunWithWarmupAsync(options, s.Mutate, 2, ct, options.JobClients);
        o.WriteLine($"round {round} jobs baseline (audited mutations, {options.JobClients} clients): {Report.Line(baseline)}");

        var metricsBefore = await readings.MetricsAsync(ct);
        var auditBefore = await s.LatestAuditIdAsync(ct);
        var (submit, clientSeconds) = await RunJobsAsync(options.Jobs, ct);
        var metricsAfter = await readings.MetricsAsync(ct);
        var auditAdded = await WaitForAuditAsync(auditBefore + AuditEntriesPerJob * _ids.Count, ct) - auditBefore;
        var ids = _ids.ToHashSet(StringComparer.Ordinal);
        var jobs = await readings.JobsAsync(ids, "type=noop", ct);
        var verify = await s.VerifyAsync(ct);

        var failures = new List<string>();
        if (submit.Errors > 0)
            failures.Add($"{submit.Errors} failed submits, the first: {submit.FirstError}");
        if (baseline.Errors + (baselineWarmup?.Errors ?? 0) > 0)
            failures.Add($"baseline: {baseline.Errors + (baselineWarmup?.Errors ?? 0)} failed requests");
        if (jobs.Count != ids.Count)
            failures.Add($"{ids.Count - jobs.Count} of {ids.Count} submitted jobs are missing from GET /api/v1/jobs");
        if (jobs.Count(j => j.Status != "succeeded") is var unfinished and > 0)
            failures.Add($"{unfinished} jobs did not succeed (the first: {jobs.First(j => j.Status != "succeeded")})");
        if (jobs.Count(j => j.Attempt != 1) is var rerun and > 0)
            failures.Add($"{rerun} jobs were claimed more than once");
        if (auditAdded != AuditEntriesPerJob * ids.Count)
            failures.Add($"the audit log grew by {auditAdded} entries for {ids.Count} jobs ({AuditEntriesPerJob} expected per job)");
        if (!verify.Ok)
            failures.Add($"GET /api/v1/audit/verify is not ok: {verify.Reason}");

        var done = jobs.Where(j => j.StartedAt is not null && j.FinishedAt is not null).ToList();
        var seconds = done.Count == 0 ? double.NaN : (done.Max(j => j.FinishedAt!.Value) - done.Min(j => j.CreatedAt)).TotalSeconds;
        var start = Spread.From(done.Select(j => (j.StartedAt!.Value - j.CreatedAt).TotalMilliseconds));
        var (h50, h99, hBuckets) = Histogram(metricsBefore, metricsAfter);
        // The server's CPU time from the first submit until the last job counted (submits and runs), per job: less noisy than
        // rates on a shared machine, since it does not count the time the server waited for a core.
        var cpuMsPerJob = (ServerReadings.Sum(metricsAfter, "process_cpu_seconds_total") - ServerReadings.Sum(metricsBefore, "process_cpu_seconds_total")) * 1000 / ids.Count;
        var m = new JobsMeasurement(options.DatabaseName, round, ids.Count, submit, seconds, done.Count / seconds, clientSeconds, start,
            h50, h99, hBuckets, baseline, cpuMsPerJob, failures.Count == 0 ? null : string.Join("; ", failures));

        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"round {round} jobs: {m.Jobs:N0} jobs in {seconds:0.00} s (server clock; {clientSeconds:0.00} s seen by the client), {m.JobsPerSecond:N0} jobs/s; " +
            $"start latency p50 {start.P50Ms:0.00} ms, p99 {start.P99Ms:0.00} ms, max {start.MaxMs:0.00} ms; submit: {Report.Line(submit)}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  server CPU: {cpuMsPerJob:0.000} ms per job (submit and run)"));
        o.WriteLine($"  opsgate_job_start_latency_seconds for this run: p50 {h50}, p99 {h99}; buckets (le: count) {hBuckets}");
        o.WriteLine($"  audit: {auditAdded:N0} entries added for {ids.Count:N0} jobs; verify: ok={verify.Ok}, {verify.Entries:N0} entries{(verify.Reason is null ? "" : ", " + verify.Reason)}");
        return m;
    }

    /// <summary>The run's share of the server's start-latency histogram (after minus before), as bucket bounds.</summary>
    private static (string P50, string P99, string Buckets) Histogram(string before, string after)
    {
        const string Name = "opsgate_job_start_latency_seconds";
        var b = ServerReadings.Buckets(before, Name, "type=\"noop\"");
        var a = ServerReadings.Buckets(after, Name, "type=\"noop\"");
        var delta = a.ToDictionary(kv => kv.Key, kv => kv.Value - b.GetValueOrDefault(kv.Key));
        var total = delta.GetValueOrDefault(double.PositiveInfinity);
        if (total <= 0)
            return ("n/a", "n/a", "none");
        string Bound(double p)
        {
            var bound = delta.Where(kv => kv.Value >= p * total).Select(kv => kv.Key).Min();
            var lower = delta.Keys.Where(k => k < bound).DefaultIfEmpty(0).Max();
            return double.IsPositiveInfinity(bound)
                ? string.Create(CultureInfo.InvariantCulture, $"> {lower * 1000:0.#} ms")
                : string.Create(CultureInfo.InvariantCulture, $"{lower * 1000:0.#}-{bound * 1000:0.#} ms");
        }
        long previous = 0;
        var buckets = new List<string>();
        foreach (var (le, cumulative) in delta.OrderBy(kv => kv.Key))
        {
            var count = (long)cumulative - previous;
            previous = (long)cumulative;
            if (count > 0)
                buckets.Add(double.IsPositiveInfinity(le) ? $"+Inf: {count}" : string.Create(CultureInfo.InvariantCulture, $"{le * 1000:0.#} ms: {count}"));
        }
        return (Bound(0.50), Bound(0.99), string.Join(", ", buckets));
    }

    public static void Table(TextWriter o, IReadOnlyList<JobsMeasurement> measurements)
    {
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine("| database | round | jobs | seconds | jobs/s | start p50 ms | start p99 ms | start max ms | histogram p50 | histogram p99 | submit p50 ms | submit p99 ms | server CPU ms/job | baseline mutations/s | ratio | target | result |");
        o.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---|");
        foreach (var m in measurements)
        {
            o.WriteLine(string.Create(inv,
                $"| {m.Database} | {m.Round} | {m.Jobs:N0} | {m.Seconds:0.00} | {m.JobsPerSecond:N0} | {m.StartLatency.P50Ms:0.00} | {m.StartLatency.P99Ms:0.00} | {m.StartLatency.MaxMs:0.00} | " +
                $"{m.HistogramP50} | {m.HistogramP99} | {m.Submit.All.P50Ms:0.00} | {m.Submit.All.P99Ms:0.00} | {m.CpuMsPerJob:0.000} | {m.Baseline.PerSecond:N0} | {m.Ratio:0.000} | " +
                $">= 1,000 jobs/s, start p50 < 10 ms | {m.Verdict} |"));
        }
        foreach (var f in measurements.Where(m => m.Failure is not null))
            o.WriteLine($"jobs round {f.Round} FAILED: {f.Failure}");
    }
}
