using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>
/// Durations as people write them in runbooks: <c>250ms</c>, <c>30s</c>, <c>5m</c>, <c>1h30m</c> (Go style),
/// or <c>00:05:00</c> (.NET style, as in appsettings). Never negative.
/// </summary>
internal static partial class Durations
{
    public const string Examples = "250ms, 30s, 5m, 1h30m or 00:05:00";

    // Far beyond any sensible timeout, and small enough that adding a few never overflows TimeSpan.
    private static readonly TimeSpan Longest = TimeSpan.FromDays(366);

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
            return false;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            // "c" is the invariant [d.]hh:mm:ss[.fffffff]; a bare "5" would parse as five days, hence the ':' test above.
            return TimeSpan.TryParseExact(text, "c", CultureInfo.InvariantCulture, out value)
                && value >= TimeSpan.Zero && value <= Longest;
        }
        var match = GoStyle().Match(text);
        if (!match.Success)
            return false;
        var total = 0m;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unit = UnitOf(part.ValueSpan);
            var number = decimal.Parse(part.ValueSpan[..^unit.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            total += number * unit switch
            {
                "ms" => 1m,
                "s" => 1_000m,
                "m" => 60_000m,
                _ => 3_600_000m,
            };
            if (total > (decimal)Longest.TotalMilliseconds)
                return false;
        }
        value = TimeSpan.FromTicks((long)(total * TimeSpan.TicksPerMillisecond));
        return true;
    }

    /// <exception cref="FormatException">The text is not a duration; the message says what one looks like.</exception>
    public static TimeSpan Parse(string? text) =>
        TryParse(text, out var value) ? value : throw new FormatException($"'{text}' is not a duration: use e.g. {Examples}");

    /// <summary>The shortest Go-style text for a duration (<c>1h30m</c>, <c>250ms</c>), as listings show it.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
            return "0s";
        var text = new StringBuilder();
        Append(text, (long)value.TotalHours, "h");
        Append(text, value.Minutes, "m");
        Append(text, value.Seconds, "s");
        Append(text, value.Milliseconds, "ms");
        return text.ToString();
    }

    private static void Append(StringBuilder text, long amount, string unit)
    {
        if (amount != 0)
            text.Append(amount.ToString(CultureInfo.InvariantCulture)).Append(unit);
    }

    private static string UnitOf(ReadOnlySpan<char> part) =>
        part.EndsWith("ms", StringComparison.Ordinal) ? "ms" : part[^1..].ToString();

    [GeneratedRegex(@"^(?<part>[0-9]+(\.[0-9]+)?(ms|h|m|s))+$", RegexOptions.CultureInvariant)]
    private static partial Regex GoStyle();
}
