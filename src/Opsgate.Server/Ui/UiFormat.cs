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

    private static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Stored JSON (a step's outputs) indented for reading; text that is not JSON is shown as it is.</summary>
    public static string Json(string json) => Engine.JobJson.Output(json) is { } node ? node.ToJsonString(Indented) : json;
}
