using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Opsgate.Bench;

/// <param name="Unrestricted">Latencies (ms) of the first page as the admin (no namespace allowlist): the baseline.</param>
/// <param name="Restricted">The same page as a viewer limited to namespace prod.</param>
internal sealed record JobsListMeasurement(string Database, int Jobs, int Visible, double[] Unrestricted, double[] Restricted, string? Failure)
{
    public const double TargetP50Ms = 20;

    public static void Table(TextWriter o, IReadOnlyList<JobsListMeasurement> measurements)
    {
        o.WriteLine("| database | jobs | visible to prod | admin p50 ms (baseline) | admin p99 ms | prod-only p50 ms | prod-only p99 ms | ratio p50 | target | result |");
        o.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var m in measurements)
        {
            var (a50, a99, r50, r99) = (Percentile(m.Unrestricted, 0.5), Percentile(m.Unrestricted, 0.99), Percentile(m.Restricted, 0.5), Percentile(m.Restricted, 0.99));
            var verdict = m.Failure is not null ? "FAILED" : r50 < TargetP50Ms ? "met" : "missed";
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {m.Database} | {m.Jobs:N0} | {m.Visible:N0} | {a50:0.00} | {a99:0.00} | {r50:0.00} | {r99:0.00} | {r50 / a50:0.00} | prod-only p50 < {TargetP50Ms} ms | {verdict} |"));
        }
        foreach (var f in measurements.Where(m => m.Failure is not null))
            o.WriteLine($"jobs-list FAILED: {f.Failure}");
    }

    private static double Percentile(double[] values, double p)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    }
}

/// <summary>
/// The jobs-list scenario (issue 15): a server of its own with a runbook that waits for approval before one k8s.scale
/// step, on a cluster declared in configuration (never called: no job runs). N jobs are submitted, one in 100 in
/// namespace prod and the rest spread over 37 others; then the first page of GET /api/v1/jobs (limit 50) is read
/// one request at a time, as the admin (no allowlist: the baseline) and as a viewer limited to prod, alternating.
/// </summary>
internal static class JobsListBench
{
    private const string Runbook =
        """
        # Written by opsgate-bench: a job with a namespace target that never runs (it waits for approval).
        name: bench-scoped
        options: {requires_approval: true}
        parameters:
          - {name: namespace, type: string, required: true}
        steps:
          - name: scale
            kind: k8s.scale
            with: {cluster: bench, namespace: "{{ params.namespace }}", kind: deployment, name: web, replicas: 1}
        """;

    private const string Kubeconfig =
        """
        apiVersion: v1
        kind: Config
        clusters: [{name: bench, cluster: {server: "https://127.0.0.1:9"}}]
        users: [{name: bench, user: {token: bench}}]
        contexts: [{name: bench, context: {cluster: bench, user: bench}}]
        current-context: bench
        """;

    private const int Samples = 400;

    public static string Describe(BenchOptions options) =>
        $"jobs-list: its own server; {options.ListJobs:N0} jobs waiting for approval, 1 in 100 in namespace prod (a k8s.scale target), the rest over 37 " +
        $"other namespaces; {Samples} reads each of GET /api/v1/jobs?limit=50 by one client, alternating the admin (baseline) and a viewer limited to prod";

    public static async Task<JobsListMeasurement> RunAsync(BenchOptions options, TextWriter o, HttpClient http, HttpClient slow, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("opsgate-bench-list-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "bench-scoped.yaml"), Runbook, ct);
            var kubeconfig = Path.Combine(dir, "kubeconfig");
            await File.WriteAllTextAsync(kubeconfig, Kubeconfig, ct);
            await using var server = await ServerProcess.StartAsync(options, http, ct, "--Jobs:RunbookDirectory=" + dir,
                "--Clusters:bench:Kubeconfig=" + kubeconfig, "--Clusters:bench:AllowedNamespaces=*", "--Kubernetes:ProbeInterval=01:00:00");
            o.WriteLine($"jobs-list server pid {server.ProcessId} at {server.BaseAddress}");
            var s = new Scenarios(http, slow, server.BaseAddress, server.AdminKey);
            await s.LatestAuditIdAsync(ct);

            var jobs = new Uri(server.BaseAddress, "api/v1/jobs");
            var next = -1;
            var submit = await LoadRunner.RunAsync(
                (w, token) =>
                {
                    var i = Interlocked.Increment(ref next);
                    var ns = i % 100 == 0 ? "prod" : $"team-{i % 37}";
                    var body = Encoding.UTF8.GetBytes($$$"""{"type":"bench-scoped","params":{"namespace":"{{{ns}}}"}}""");
                    return s.SendAsync(w, 0, () => s.AuthenticatedJson(HttpMethod.Post, jobs, body), HttpStatusCode.Created, token);
                },
                1, options.JobClients, TimeSpan.FromMinutes(10), options.ListJobs, ct);
            o.WriteLine($"jobs-list submit: {Report.Line(submit)}");

            var created = await slow.SendAsync(s.AuthenticatedJson(HttpMethod.Post, new Uri(server.BaseAddress, "api/v1/apikeys"),
                Encoding.UTF8.GetBytes("""{"name":"bench-prod-viewer","role":"viewer","namespaces":["prod"]}""")), ct);
            using var key = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct));
            var prodKey = key.RootElement.GetProperty("key").GetString()!;

            var page = new Uri(server.BaseAddress, "api/v1/jobs?limit=50");
            var failures = new List<string>();
            if (submit.Errors > 0)
                failures.Add($"{submit.Errors} failed submits, the first: {submit.FirstError}");
            var visible = 0;
            async Task<double> TimeAsync(string apiKey)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, page);
                request.Headers.Add("X-API-Key", apiKey);
                var started = Stopwatch.GetTimestamp();
                using var response = await http.SendAsync(request, ct);
                var body = await response.Content.ReadAsByteArrayAsync(ct);
                var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (response.StatusCode != HttpStatusCode.OK)
                    failures.Add($"GET /api/v1/jobs: {(int)response.StatusCode}");
                else if (apiKey == prodKey)
                {
                    using var doc = JsonDocument.Parse(body);
                    visible = doc.RootElement.GetProperty("items").GetArrayLength();
                }
                return ms;
            }
            for (var i = 0; i < 20; i++) // warm-up: JIT and caches, both principals
            {
                await TimeAsync(server.AdminKey);
                await TimeAsync(prodKey);
            }
            var admin = new double[Samples];
            var prod = new double[Samples];
            for (var i = 0; i < Samples; i++)
            {
                admin[i] = await TimeAsync(server.AdminKey);
                prod[i] = await TimeAsync(prodKey);
            }
            if (visible != Math.Min(50, (options.ListJobs + 99) / 100))
                failures.Add($"the prod-only viewer saw {visible} jobs on the first page, expected {Math.Min(50, (options.ListJobs + 99) / 100)}");
            return new JobsListMeasurement(options.DatabaseName, options.ListJobs, visible, admin, prod,
                failures.Count == 0 ? null : string.Join("; ", failures.Distinct()));
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
