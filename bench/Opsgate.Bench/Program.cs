using System.Globalization;
using System.Runtime.InteropServices;
using Opsgate.Bench;

if (args is [BareForwarder.Command, ..])
    return await BareForwarder.ServeAsync(args);

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"opsgate-bench: {e.Message}");
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
// SIGTERM (e.g. from a CI time-out) unwinds the same way, so the server is killed and its temp dir removed.
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});

try
{
    return await Bench.RunAsync(options, Console.Out, stop.Token);
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("opsgate-bench: interrupted; the server was stopped");
    return 130;
}
catch (BenchException e)
{
    Console.Error.WriteLine($"opsgate-bench: {e.Message}");
    return 1;
}
catch (Exception e)
{
    // Caught here, not left unhandled, so that every finally (and so the server's kill) runs.
    Console.Error.WriteLine($"opsgate-bench: {e}");
    return 1;
}

internal static class Bench
{
    private static readonly Target ReadTarget = new(20_000, 10);
    private static readonly Target MutationTarget = new(2_500, 20);

    public static async Task<int> RunAsync(BenchOptions options, TextWriter o, CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.Concurrency,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
        };
        using var http = new HttpClient(handler, disposeHandler: false) { Timeout = TimeSpan.FromSeconds(30) };
        // Verification walks the whole chain, which grows with every run; it gets longer than a load request.
        using var slow = new HttpClient(handler, disposeHandler: false) { Timeout = TimeSpan.FromMinutes(10) };

        Report.Machine(o);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"settings: {options.DatabaseName}, {options.Concurrency} concurrent clients (one HttpClient, {options.Concurrency} connections), " +
            $"{options.Duration.TotalSeconds:0} s per scenario after {options.Warmup.TotalSeconds:0} s warm-up, {options.Rounds} rounds, at most {options.MaxRequests:N0} requests per scenario"));
        o.WriteLine("server: dotnet opsgate.dll, separate process, 127.0.0.1 only, RateLimit:Enabled=false, Logging:LogLevel:Default=Warning");
        if (options.Runs("reads") || options.Runs("mutations"))
        {
            o.WriteLine("baseline: GET /health/live (no auth, no database), measured just before each scenario on the same server");
            o.WriteLine("reads: GET /api/v1/audit?limit=1 with X-API-Key (admin)");
            o.WriteLine("mutations: each iteration is POST /api/v1/apikeys {name, role: viewer} then DELETE /api/v1/apikeys/{id}; each of the two requests counts as one mutation");
        }
        if (options.Runs("kube"))
            o.WriteLine(KubeBench.Describe(options));
        if (options.Runs("jobs"))
            o.WriteLine(JobsBench.Describe(options));
        if (options.Runs("jobs-memory"))
            o.WriteLine(JobsMemoryBench.Describe(options));
        if (options.Runs("jobs-list"))
            o.WriteLine(JobsListBench.Describe(options));
        if (options.Runs("ansible") || options.Runs("ansible-large"))
            o.WriteLine(AnsibleBench.Describe(options));
        if (options.Runs("events"))
            o.WriteLine(EventsBench.Describe(options));
        if (options.Runs("ui"))
            o.WriteLine(UiBench.Describe());

        var measurements = new List<Measurement>();
        var kube = new List<KubeMeasurement>();
        var jobs = new List<JobsMeasurement>();
        var memory = new List<MemoryMeasurement>();
        if (options.Runs("reads") || options.Runs("mutations") || options.Runs("kube") || options.Runs("jobs"))
        {
            await using var server = await ServerProcess.StartAsync(options, http, ct);
            o.WriteLine($"server pid {server.ProcessId} at {server.BaseAddress}");
            var s = new Scenarios(http, slow, server.BaseAddress, server.AdminKey);
            await s.LatestAuditIdAsync(ct); // fails fast if the key is not accepted

            if (options.Runs("reads") || options.Runs("mutations"))
                measurements.AddRange(await FoundationAsync(options, o, s, ct));

            if (options.Runs("kube"))
            {
                await using var sim = await KubeSimProcess.StartAsync(options.KubeSimDll, http, ct);
                var status = await KubeBench.RegisterAsync(slow, s, server.BaseAddress, sim, ct);
                o.WriteLine($"kubesim pid {sim.ProcessId} at {sim.BaseAddress}, registered with Opsgate as cluster '{KubeBench.Cluster}' ({status})");
                await using var forwarder = await BareForwarder.StartAsync(sim.BaseAddress, http, ct);
                o.WriteLine($"bare forwarder pid {forwarder.ProcessId} at {forwarder.BaseAddress}");
                var k = new KubeBench(options, s, new ServerReadings(slow, s, server.BaseAddress), server.BaseAddress, sim, forwarder);
                await k.WarmUpAsync(o, ct);
                for (var round = 1; round <= options.Rounds; round++)
                    kube.Add(await k.MeasureAsync(o, round, ct));
            }

            if (options.Runs("jobs"))
            {
                var j = new JobsBench(options, s, new ServerReadings(slow, s, server.BaseAddress), server.BaseAddress);
                await j.WarmUpAsync(o, ct);
                // One round: 10,000 jobs are a large sample already, and each round costs a minute or more on 2 cores.
                jobs.Add(await j.MeasureAsync(o, 1, ct));
            }
        }

        // The Ansible scenarios have a server of their own (it needs a playbook directory), before jobs-memory: on
        // PostgreSQL, the jobs that jobs-memory leaves waiting would be in its queue.
        var ansible = options.Runs("ansible") || options.Runs("ansible-large") ? await AnsibleBench.RunAsync(options, o, http, ct) : null;

        // A server of its own, started after the other one stopped: on PostgreSQL they would share the job queue.
        if (options.Runs("jobs-memory"))
            memory.Add(await JobsMemoryBench.RunAsync(options, o, http, slow, ct));
        // Its own server too: its jobs wait for approval forever.
        var list = options.Runs("jobs-list") ? await JobsListBench.RunAsync(options, o, http, slow, ct) : null;
        var events = options.Runs("events") ? await EventsBench.RunAsync(options, o, slow, ct) : [];
        // Last: on PostgreSQL its 100,000 jobs stay in the shared database.
        var ui = options.Runs("ui") ? await UiBench.RunAsync(options, o, http, ct) : null;

        if (measurements.Count > 0)
        {
            o.WriteLine();
            Report.Table(o, measurements);
            o.WriteLine();
            Report.Summary(o, measurements);
        }
        if (kube.Count > 0)
        {
            o.WriteLine();
            KubeBench.Table(o, kube);
        }
        if (jobs.Count > 0)
        {
            o.WriteLine();
            JobsBench.Table(o, jobs);
        }
        if (memory.Count > 0)
        {
            o.WriteLine();
            MemoryMeasurement.Table(o, memory);
        }
        if (list is not null)
        {
            o.WriteLine();
            JobsListMeasurement.Table(o, [list]);
        }
        if (ansible is not null)
        {
            o.WriteLine();
            AnsibleBench.Table(o, ansible);
        }
        if (events.Count > 0)
        {
            o.WriteLine();
            EventsMeasurement.Table(o, events);
        }
        if (ui is not null)
        {
            o.WriteLine();
            UiMeasurement.Table(o, [ui]);
        }
        var failed = ui?.Failure is not null || measurements.Any(m => m.Failure is not null) || kube.Any(m => m.Failure is not null) || events.Any(m => m.Failure is not null)
            || jobs.Any(m => m.Failure is not null) || memory.Any(m => m.Failure is not null) || ansible?.Failed == true || list?.Failure is not null;
        return failed ? 1 : 0;
    }

    /// <summary>The foundation scenarios: reads and audited mutations, each after its /health/live baseline.</summary>
    private static async Task<List<Measurement>> FoundationAsync(BenchOptions options, TextWriter o, Scenarios s, CancellationToken ct)
    {
        // A fresh server JITs as it goes: give every scenario's code path one unmeasured pass first.
        if (options.Warmup > TimeSpan.Zero)
        {
            o.WriteLine($"warming up the server: each scenario {options.Warmup.TotalSeconds:0} s, unmeasured");
            foreach (var (iteration, kinds) in new (Iteration, int)[] { (s.Baseline, 1), (s.Read, 1), (s.Mutate, 2) })
                await LoadRunner.RunAsync(iteration, kinds, options.Concurrency, options.Warmup, options.MaxRequests, ct);
        }

        var measurements = new List<Measurement>();
        for (var round = 1; round <= options.Rounds; round++)
        {
            if (options.Runs("reads"))
                measurements.Add(await MeasureAsync(options, o, round, "reads", s.Read, 1, ReadTarget, s, mutating: false, ct));
            if (options.Runs("mutations"))
                measurements.Add(await MeasureAsync(options, o, round, "mutations", s.Mutate, 2, MutationTarget, s, mutating: true, ct));
        }
        return measurements;
    }

    private static async Task<Measurement> MeasureAsync(
        BenchOptions options, TextWriter o, int round, string name, Iteration iteration, int kinds, Target target, Scenarios s, bool mutating, CancellationToken ct)
    {
        var (baselineWarmup, baseline) = await LoadRunner.RunWithWarmupAsync(options, s.Baseline, 1, ct);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"round {round} baseline: {Report.Line(baseline)}"));

        var auditBefore = mutating ? await s.LatestAuditIdAsync(ct) : 0;
        var sentBefore = s.MutationsSent;
        var (warmup, result) = await LoadRunner.RunWithWarmupAsync(options, iteration, kinds, ct);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"round {round} {name}: {Report.Line(result)}"));

        var failures = new List<string>();
        if (result.Errors > 0)
            failures.Add($"{result.Errors} failed requests, the first: {result.FirstError}");
        if (warmup?.Errors > 0)
            failures.Add($"warm-up: {warmup.Errors} failed requests, the first: {warmup.FirstError}");
        if (baseline.Errors + (baselineWarmup?.Errors ?? 0) > 0)
            failures.Add($"baseline: {baseline.Errors + (baselineWarmup?.Errors ?? 0)} failed requests, the first: {baselineWarmup?.FirstError ?? baseline.FirstError}");
        if (mutating)
        {
            var create = result.ByKind[Scenarios.Create];
            var revoke = result.ByKind[Scenarios.Revoke];
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  create: {create.Count:N0}, p50 {Report.Ms(create.P50Ms)} ms, p99 {Report.Ms(create.P99Ms)} ms; revoke: {revoke.Count:N0}, p50 {Report.Ms(revoke.P50Ms)} ms, p99 {Report.Ms(revoke.P99Ms)} ms"));
            var verify = await s.VerifyAsync(ct);
            var added = await s.LatestAuditIdAsync(ct) - auditBefore;
            var sent = s.MutationsSent - sentBefore;
            o.WriteLine($"  audit: {added:N0} entries added for {sent:N0} mutating requests (warm-up included); verify: ok={verify.Ok}, {verify.Entries:N0} entries{(verify.Reason is null ? "" : ", " + verify.Reason)}");
            if (!verify.Ok)
                failures.Add($"GET /api/v1/audit/verify is not ok: {verify.Reason}");
            if (added != sent && failures.Count == 0)
                failures.Add($"the audit log grew by {added} entries for {sent} mutating requests");
        }
        return new Measurement(options.DatabaseName, round, name, result, baseline, target, failures.Count == 0 ? null : string.Join("; ", failures));
    }
}
