using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Opsgate.Bench;

/// <summary>One job as <c>GET /api/v1/jobs</c> shows it; times are the server's (UTC).</summary>
internal sealed record JobTimes(string Id, string Status, int Attempt, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt);

/// <summary>
/// Reads the server's own view after a run: jobs page by page, and its Prometheus text at <c>/metrics</c>
/// (counters, gauges, histogram buckets), read over the slow client so a big answer does not time out.
/// </summary>
internal sealed class ServerReadings(HttpClient slow, Scenarios s, Uri baseAddress)
{
    private readonly Uri _metrics = new(baseAddress, "metrics");

    public async Task<string> MetricsAsync(CancellationToken ct)
    {
        using var response = await slow.GetAsync(_metrics, ct);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new BenchException($"GET /metrics answered {(int)response.StatusCode}");
        return await response.Content.ReadAsStringAsync(ct);
    }

    /// <summary>The sum of every series of <paramref name="name"/> whose labels contain all of <paramref name="labels"/> (e.g. <c>type="noop"</c>).</summary>
    public static double Sum(string metrics, string name, params string[] labels)
    {
        double sum = 0;
        foreach (var line in metrics.Split('\n'))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length <= name.Length || line[name.Length] is not ('{' or ' '))
                continue;
            var space = line.LastIndexOf(' ');
            var series = line[..space];
            if (labels.All(l => series.Contains(l, StringComparison.Ordinal)))
                sum += double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return sum;
    }

    /// <summary>A histogram's cumulative bucket counts by upper bound (+Inf last), for the series with <paramref name="labels"/>.</summary>
    public static SortedDictionary<double, double> Buckets(string metrics, string name, params string[] labels)
    {
        var buckets = new SortedDictionary<double, double>();
        foreach (var line in metrics.Split('\n'))
        {
            if (!line.StartsWith(name + "_bucket{", StringComparison.Ordinal) || !labels.All(l => line.Contains(l, StringComparison.Ordinal)))
                continue;
            var le = line.IndexOf("le=\"", StringComparison.Ordinal) + 4;
            var bound = line[le..line.IndexOf('"', le)];
            var upper = bound == "+Inf" ? double.PositiveInfinity : double.Parse(bound, CultureInfo.InvariantCulture);
            buckets[upper] = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
        return buckets;
    }

    /// <summary>
    /// Reads jobs newest first (<c>limit=500</c> pages, <c>cursor</c>) until every id in <paramref name="wanted"/> was seen
    /// or the list ends; returns those jobs.
    /// </summary>
    public async Task<List<JobTimes>> JobsAsync(IReadOnlySet<string> wanted, string query, CancellationToken ct)
    {
        var found = new List<JobTimes>(wanted.Count);
        string? cursor = null;
        do
        {
            var uri = new Uri(baseAddress, $"api/v1/jobs?limit=500&{query}" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            using var request = s.Authenticated(HttpMethod.Get, uri);
            using var response = await slow.SendAsync(request, ct);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new BenchException($"GET {uri.PathAndQuery} answered {(int)response.StatusCode}");
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
            foreach (var item in doc.RootElement.GetProperty("items").EnumerateArray())
            {
                var id = item.GetProperty("job_id").GetString()!;
                if (wanted.Contains(id))
                    found.Add(new JobTimes(id, item.GetProperty("status").GetString()!, item.GetProperty("attempt").GetInt32(),
                        Time(item, "created_at")!.Value, Time(item, "started_at"), Time(item, "finished_at")));
            }
            cursor = doc.RootElement.TryGetProperty("next_cursor", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
        }
        while (cursor is not null && found.Count < wanted.Count);
        return found;
    }

    /// <summary>Counts jobs with a status (pages of 500).</summary>
    public async Task<int> CountAsync(string status, CancellationToken ct)
    {
        var count = 0;
        string? cursor = null;
        do
        {
            var uri = new Uri(baseAddress, $"api/v1/jobs?limit=500&status={status}" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            using var request = s.Authenticated(HttpMethod.Get, uri);
            using var response = await slow.SendAsync(request, ct);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new BenchException($"GET {uri.PathAndQuery} answered {(int)response.StatusCode}");
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
            count += doc.RootElement.GetProperty("items").GetArrayLength();
            cursor = doc.RootElement.TryGetProperty("next_cursor", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
        }
        while (cursor is not null);
        return count;
    }

    private static DateTime? Time(JsonElement item, string name) =>
        item.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? DateTime.Parse(v.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal)
            : null;

    public static string Mb(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.0", CultureInfo.InvariantCulture);
}
