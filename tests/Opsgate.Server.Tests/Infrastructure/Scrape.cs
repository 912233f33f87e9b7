using System.Globalization;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>Values read from a <c>/metrics</c> scrape (Prometheus text format).</summary>
internal static class Scrape
{
    /// <summary>The sum of the values of every series whose line starts with <paramref name="seriesPrefix"/> (0 when none does).</summary>
    public static double Sum(string scrape, string seriesPrefix) =>
        scrape.Split('\n').Where(l => l.StartsWith(seriesPrefix, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
}
