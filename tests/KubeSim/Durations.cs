using System.Globalization;

namespace KubeSim;

/// <summary>Go-style durations on the command line: 200ms, 2s, 1m, 1.5s.</summary>
internal static class Durations
{
    public static TimeSpan Parse(string text)
    {
        (string Suffix, double Ms)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, ms) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                return TimeSpan.FromMilliseconds(value * ms);
            }
        }
        throw new FormatException($"not a duration: {text} (use e.g. 200ms, 2s)");
    }
}
