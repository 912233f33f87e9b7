using System.Diagnostics;

namespace Opsgate.Bench;

/// <summary>One client's record: every request's latency in <see cref="Stopwatch"/> ticks, by request kind, and its failures.</summary>
internal sealed class Worker(int index, int kinds, int capacity)
{
    private readonly List<long>[] _latencies = Enumerable.Range(0, kinds).Select(_ => new List<long>(capacity)).ToArray();

    public int Index { get; } = index;
    public long Requests { get; private set; }
    public long Slowest => _slowest;
    public long Errors { get; private set; }
    public string? FirstError { get; private set; }

    public IReadOnlyList<long> Latencies(int kind) => _latencies[kind];

    /// <summary>Records a request that started at <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp) and ended now.</summary>
    /// <summary>When (a <see cref="Stopwatch"/> timestamp) this client's slowest request started.</summary>
    public long SlowestStarted { get; private set; }

    private long _slowest = -1;

    public void Record(int kind, long started, string? error = null)
    {
        var elapsed = Stopwatch.GetTimestamp() - started;
        _latencies[kind].Add(elapsed);
        if (elapsed > _slowest)
        {
            _slowest = elapsed;
            SlowestStarted = started;
        }
        Requests++;
        if (error is not null)
        {
            Errors++;
            FirstError ??= error;
        }
    }
}

/// <summary>What a scenario does once per loop of one client; it records each HTTP request it makes.</summary>
internal delegate Task Iteration(Worker worker, CancellationToken ct);

/// <summary>Latency percentiles and mean of one kind of request, from all clients' samples.</summary>
internal sealed record Latency(long Count, double P50Ms, double P99Ms, double MaxMs, double MeanMs)
{
    public static Latency From(IEnumerable<IReadOnlyList<long>> samples)
    {
        var all = samples.SelectMany(s => s).ToArray();
        if (all.Length == 0)
            return new Latency(0, double.NaN, double.NaN, double.NaN, double.NaN);
        Array.Sort(all);
        return new Latency(all.Length, Ms(Percentile(all, 0.50)), Ms(Percentile(all, 0.99)), Ms(all[^1]), Ms(all.Average()));
    }

    /// <summary>Nearest-rank percentile: the smallest sample that at least <paramref name="p"/> of all samples do not exceed.</summary>
    private static long Percentile(long[] sorted, double p) => sorted[Math.Max(0, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static double Ms(double ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

/// <param name="SlowestAt">How far into the run the slowest request started: tells a start-up stall from one mid-run.</param>
internal sealed record LoadResult(long Requests, long Errors, string? FirstError, TimeSpan Elapsed, Latency All, IReadOnlyList<Latency> ByKind, TimeSpan SlowestAt)
{
    public double PerSecond => Requests / Elapsed.TotalSeconds;
}

/// <summary>
/// Closed-loop load: N clients each run the scenario's iteration back to back until the time is up or the
/// scenario's request cap is reached. A request in flight at the deadline is finished and counted; the
/// elapsed time runs until the last client stopped, so the rate is never flattered.
/// <para>
/// Paced load (a total rate given): the same N clients share that rate, client i starting its k-th iteration at
/// (i + k N) / rate seconds into the run. A client behind its schedule starts at once and skips nothing, so a
/// server that cannot keep up shows as a rate below the one asked for. Latency is measured from the send.
/// </para>
/// </summary>
internal static class LoadRunner
{
    public static async Task<LoadResult> RunAsync(
        Iteration iteration, int kinds, int concurrency, TimeSpan duration, long maxRequests, CancellationToken ct, double? perSecond = null)
    {
        if (perSecond is not (null or > 0))
            throw new ArgumentOutOfRangeException(nameof(perSecond), perSecond, "a paced rate must be above zero");
        var perWorkerCap = Math.Max(1, maxRequests / concurrency);
        var capacity = (int)Math.Min(perWorkerCap, 1 << 16);
        var workers = Enumerable.Range(0, concurrency).Select(i => new Worker(i, kinds, capacity)).ToArray();
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);

        async Task Run(Worker w)
        {
            // Leave the caller's thread at once so the clients start together.
            await Task.Yield();
            for (long k = 0; Stopwatch.GetTimestamp() < deadline && w.Requests < perWorkerCap; k++)
            {
                ct.ThrowIfCancellationRequested();
                if (perSecond is { } rate)
                {
                    var due = started + (long)((w.Index + (double)k * concurrency) / rate * Stopwatch.Frequency);
                    if (due >= deadline)
                        break;
                    var wait = due - Stopwatch.GetTimestamp();
                    if (wait > 0)
                        await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), ct);
                }
                await iteration(w, ct);
            }
        }

        await Task.WhenAll(workers.Select(Run));
        var elapsed = Stopwatch.GetElapsedTime(started);
        var byKind = Enumerable.Range(0, kinds).Select(k => Latency.From(workers.Select(w => w.Latencies(k)))).ToList();
        var all = Latency.From(workers.SelectMany(w => Enumerable.Range(0, kinds).Select(w.Latencies)));
        var slowest = workers.MaxBy(w => w.Slowest)!;
        return new LoadResult(
            workers.Sum(w => w.Requests), workers.Sum(w => w.Errors), workers.Select(w => w.FirstError).FirstOrDefault(e => e is not null),
            elapsed, all, byKind, Stopwatch.GetElapsedTime(started, Math.Max(started, slowest.SlowestStarted)));
    }

    /// <summary>Unmeasured load first (JIT tiering, pools, caches), then the measured run; warm-up failures count too.</summary>
    /// <param name="perSecond">A total rate for paced load; closed-loop load without it.</param>
    public static async Task<(LoadResult? Warmup, LoadResult Measured)> RunWithWarmupAsync(
        BenchOptions options, Iteration iteration, int kinds, CancellationToken ct, int? concurrency = null, double? perSecond = null)
    {
        var clients = concurrency ?? options.Concurrency;
        var warmup = options.Warmup > TimeSpan.Zero
            ? await RunAsync(iteration, kinds, clients, options.Warmup, options.MaxRequests, ct, perSecond)
            : null;
        return (warmup, await RunAsync(iteration, kinds, clients, options.Duration, options.MaxRequests, ct, perSecond));
    }
}
