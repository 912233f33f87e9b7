using System.Globalization;
using System.Net;
using System.Text;

namespace Opsgate.Bench;

/// <param name="IdleRss">VmRSS of the idle server before the first submit: the baseline.</param>
/// <param name="WaitingRss">VmRSS with the jobs waiting.</param>
/// <param name="PeakRss">VmHWM: the highest RSS the process reached, submits included.</param>
/// <param name="MetricRss">process_resident_memory_bytes from the server's /metrics at the same moment.</param>
internal sealed record MemoryMeasurement(string Database, int Waiting, long IdleRss, long WaitingRss, long PeakRss, long MetricRss, long GcHeap, string? Failure)
{
    public const long MaxRss = 300L * 1024 * 1024;

    public string Verdict => Failure is not null ? "FAILED" : WaitingRss < MaxRss && PeakRss < MaxRss ? "met" : "missed";

    public static void Table(TextWriter o, IReadOnlyList<MemoryMeasurement> measurements)
    {
        o.WriteLine("| database | jobs waiting | idle RSS MB (baseline) | RSS MB with jobs waiting | ratio | peak RSS MB (VmHWM) | process_resident_memory_bytes MB | dotnet_gc_heap_bytes MB | target | result |");
        o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var m in measurements)
        {
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {m.Database} | {m.Waiting:N0} | {ServerReadings.Mb(m.IdleRss)} | {ServerReadings.Mb(m.WaitingRss)} | {(double)m.WaitingRss / m.IdleRss:0.00} | " +
                $"{ServerReadings.Mb(m.PeakRss)} | {ServerReadings.Mb(m.MetricRss)} | {ServerReadings.Mb(m.GcHeap)} | RSS < 300 MB | {m.Verdict} |"));
        }
        foreach (var f in measurements.Where(m => m.Failure is not null))
            o.WriteLine($"jobs-memory FAILED: {f.Failure}");
    }
}

/// <summary>
/// The jobs-memory scenario (issue 4b): a server of its own with one worker and a runbook whose single step sleeps
/// for longer than the run; one job occupies the worker and N more wait behind it. RSS is read from
/// /proc/&lt;pid&gt;/status, next to the server's own process_resident_memory_bytes; the idle server is the baseline.
/// </summary>
internal static class JobsMemoryBench
{
    private const string Runbook =
        """
        # Written by opsgate-bench: holds the only worker so that every other job waits.
        name: bench-hold
        description: Sleeps longer than the benchmark runs.
        steps:
          - name: hold
            kind: sleep
            with:
              duration: 30m
        """;

    public static string Describe(BenchOptions options) =>
        $"jobs-memory: its own server with --Jobs:Workers=1 and a runbook whose one step sleeps 30 min; {options.WaitingJobs + 1:N0} jobs submitted by " +
        $"{options.JobClients} clients, so one runs and {options.WaitingJobs:N0} wait (pending); RSS from /proc/<pid>/status; baseline: the same server idle before the first submit";

    public static async Task<MemoryMeasurement> RunAsync(BenchOptions options, TextWriter o, HttpClient http, HttpClient slow, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("opsgate-bench-runbooks-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "bench-hold.yaml"), Runbook, ct);
            await using var server = await ServerProcess.StartAsync(options, http, ct, "--Jobs:Workers=1", "--Jobs:RunbookDirectory=" + dir);
            o.WriteLine($"jobs-memory server pid {server.ProcessId} at {server.BaseAddress}");
            var s = new Scenarios(http, slow, server.BaseAddress, server.AdminKey);
            var readings = new ServerReadings(slow, s, server.BaseAddress);
            await s.LatestAuditIdAsync(ct); // the key works; the read and auth paths are loaded

            // Idle: every path the run uses touched once (one submit would be a job, so not that), then a moment to settle.
            await readings.MetricsAsync(ct);
            await readings.CountAsync("pending", ct);
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            var idle = server.ProcStatusBytes("VmRSS");
            o.WriteLine($"jobs-memory idle: VmRSS {ServerReadings.Mb(idle)} MB");

            var jobs = new Uri(server.BaseAddress, "api/v1/jobs");
            var body = Encoding.UTF8.GetBytes("""{"type":"bench-hold","params":{}}""");
            var submitted = options.WaitingJobs + 1;
            var clients = Math.Min(options.JobClients, submitted);
            var submit = await LoadRunner.RunAsync(
                (w, token) => s.SendAsync(w, 0, () => s.AuthenticatedJson(HttpMethod.Post, jobs, body), HttpStatusCode.Created, token),
                1, clients, TimeSpan.FromMinutes(5), submitted, ct);
            var extra = submitted - (int)submit.Requests; // the per-client cap rounds down: submit the rest from one client
            if (extra > 0)
            {
                var rest = await LoadRunner.RunAsync(
                    (w, token) => s.SendAsync(w, 0, () => s.AuthenticatedJson(HttpMethod.Post, jobs, body), HttpStatusCode.Created, token),
                    1, 1, TimeSpan.FromMinutes(5), extra, ct);
                submit = submit with { Requests = submit.Requests + rest.Requests, Errors = submit.Errors + rest.Errors, FirstError = submit.FirstError ?? rest.FirstError };
            }
            o.WriteLine($"jobs-memory submit: {Report.Line(submit)}");

            // The worker picks up the first job within a poll interval; wait until exactly one runs.
            var pending = 0;
            var running = 0;
            for (var i = 0; i < 50; i++)
            {
                pending = await readings.CountAsync("pending", ct);
                running = await readings.CountAsync("running", ct);
                if (running == 1 && pending == submitted - 1)
                    break;
                await Task.Delay(TimeSpan.FromMilliseconds(200), ct);
            }
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            var rss = server.ProcStatusBytes("VmRSS");
            var peak = server.ProcStatusBytes("VmHWM");
            var metrics = await readings.MetricsAsync(ct);
            var metricRss = (long)ServerReadings.Sum(metrics, "process_resident_memory_bytes");
            var heap = (long)ServerReadings.Sum(metrics, "dotnet_gc_heap_bytes");
            o.WriteLine($"jobs-memory: {pending:N0} pending, {running} running; VmRSS {ServerReadings.Mb(rss)} MB (idle {ServerReadings.Mb(idle)} MB), " +
                $"VmHWM {ServerReadings.Mb(peak)} MB, process_resident_memory_bytes {ServerReadings.Mb(metricRss)} MB, dotnet_gc_heap_bytes {ServerReadings.Mb(heap)} MB");

            var failures = new List<string>();
            if (submit.Errors > 0)
                failures.Add($"{submit.Errors} failed submits, the first: {submit.FirstError}");
            if (pending != options.WaitingJobs || running != 1)
                failures.Add($"expected {options.WaitingJobs} pending and 1 running, found {pending} pending and {running} running");
            return new MemoryMeasurement(options.DatabaseName, pending, idle, rss, peak, metricRss, heap, failures.Count == 0 ? null : string.Join("; ", failures));
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Harmless leftover.
            }
        }
    }
}
