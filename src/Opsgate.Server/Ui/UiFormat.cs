using System.Globalization;

namespace Opsgate.Server.Ui;

/// <summary>How the console writes times and durations: UTC, to the second, the same on every page.</summary>
internal static class UiFormat
{
    public static string When(DateTime? at) => at is { } t ? t.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "—";

    public static string Iso(DateTime? at) => at is { } t ? t.ToString("O", CultureInfo.InvariantCulture) : "";

    public static string Took(DateTime? from, DateTime? to)
    {
        if (from is not { } start || to is not { } end)
            return "";
        var span = end - start;
        return span.TotalSeconds < 60
            ? span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"
            : span.TotalMinutes < 60 ? $"{(int)span.TotalMinutes} min {span.Seconds} s" : $"{(int)span.TotalHours} h {span.Minutes} min";
    }

    public static string Words(string status) => status.Replace('_', ' ');
}
