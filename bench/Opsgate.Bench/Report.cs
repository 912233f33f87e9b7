using System.Globalization;
using System.Runtime.InteropServices;

namespace Opsgate.Bench;

/// <summary>The issue's target for a scenario: a rate at least this high and a p99 below this.</summary>
internal sealed record Target(double MinPerSecond, double MaxP99Ms)
{
    public bool MetBy(LoadResult r) => r.PerSecond >= MinPerSecond && r.All.P99Ms < MaxP99Ms;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $">= {MinPerSecond:N0}/s, p99 < {MaxP99Ms:0} ms");
}

/// <summary>One scenario of one round, with the baseline measured just before it on the same server.</summary>
internal sealed record Measurement(string Database, int Round, string Scenario, LoadResult Result, LoadResult Baseline, Target Target, string? Failure)
{
    public double Ratio => Result.PerSecond / Baseline.PerSecond;

    public string Verdict => Failure is not null ? "FAILED" : Target.MetBy(Result) ? "met" : "missed";
}

internal static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Machine(TextWriter o)
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        o.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs ({cpu ?? "unknown model"}), {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
    }

    public static void Table(TextWriter o, IEnumerable<Measurement> measurements)
    {
        o.WriteLine("| database | round | scenario | requests | req/s | p50 ms | p99 ms | baseline req/s | baseline p99 ms | ratio | errors | target | result |");
        o.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var m in measurements)
        {
            var r = m.Result;
            o.WriteLine(string.Create(Inv,
                $"| {m.Database} | {m.Round} | {m.Scenario} | {r.Requests:N0} | {r.PerSecond:N0} | {r.All.P50Ms:0.00} | {r.All.P99Ms:0.00} | " +
                $"{m.Baseline.PerSecond:N0} | {m.Baseline.All.P99Ms:0.00} | {m.Ratio:0.000} | {r.Errors:N0} | {m.Target} | {m.Verdict} |"));
        }
    }

    /// <summary>
    /// Per scenario, the round whose paired baseline was highest: the one least disturbed by other work on the
    /// machine. The target verdict is given for that round; all rounds are in the table above it.
    /// </summary>
    public static void Summary(TextWriter o, IReadOnlyList<Measurement> measurements)
    {
        foreach (var group in measurements.GroupBy(m => (m.Database, m.Scenario)))
        {
            var best = group.MaxBy(m => m.Baseline.PerSecond)!;
            var r = best.Result;
            var verdict = best.Failure is not null
                ? $"FAILED: {best.Failure}"
                : best.Target.MetBy(r) ? "target met" : "target MISSED";
            o.WriteLine(string.Create(Inv,
                $"{best.Database} {best.Scenario} (round {best.Round}, the quietest baseline): {r.PerSecond:N0}/s, p50 {r.All.P50Ms:0.00} ms, p99 {r.All.P99Ms:0.00} ms; " +
                $"baseline {best.Baseline.PerSecond:N0}/s, ratio {best.Ratio:0.000}; target {best.Target}: {verdict}"));
            var failedRounds = group.Where(m => m.Failure is not null).ToList();
            foreach (var f in failedRounds.Where(f => f != best))
                o.WriteLine($"  round {f.Round} FAILED: {f.Failure}");
        }
    }

    public static string Ms(double ms) => ms.ToString("0.00", Inv);

    public static string Line(LoadResult r) => string.Create(Inv,
        $"{r.Requests:N0} requests, {r.PerSecond:N0}/s, p50 {Ms(r.All.P50Ms)} ms, p99 {Ms(r.All.P99Ms)} ms, " +
        $"max {Ms(r.All.MaxMs)} ms (started {r.SlowestAt.TotalSeconds:0.0} s in), {r.Errors} errors");
}
