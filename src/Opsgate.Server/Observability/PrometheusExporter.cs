using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Opsgate.Server.Observability;

/// <summary>
/// Prometheus text exposition (format 0.0.4) of the Opsgate meter. Written when no exporter package restored here;
/// kept because the documented metric names and labels must not change, which OpenTelemetry's Prometheus exporter
/// (still a beta) does not promise. A <see cref="MeterListener"/> aggregates measurements as they happen: counters sum,
/// gauges keep the last value, histograms count into the instrument's bucket boundaries. Observable
/// instruments are read at scrape time.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private const int MaxCachedLabels = 1000;

    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _instruments = new();
    private readonly Lock _scrape = new();
    private readonly ConcurrentDictionary<TagKey, string> _labels = new();

    public PrometheusExporter(OpsgateMetrics metrics)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter != metrics.Meter)
                return;
            _instruments[instrument] = new InstrumentState(instrument);
            listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public async Task WriteAsync(Stream output, CancellationToken cancellationToken)
    {
        var text = new StringBuilder(4096);
        lock (_scrape)
        {
            _listener.RecordObservableInstruments();
            foreach (var state in _instruments.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
                state.WriteTo(text);
        }
        await output.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken);
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_instruments.TryGetValue(instrument, out var state))
            state.Record(value, CachedLabels(tags));
    }

    /// <summary>
    /// Label text for up to three string tags, looked up by the tags themselves: every request records three measurements,
    /// and the same few label sets recur. Past <see cref="MaxCachedLabels"/> label sets the rest are built each time.
    /// </summary>
    private string CachedLabels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length > 3)
            return Labels(tags);
        var key = new TagKey(Tag(tags, 0), Tag(tags, 1), Tag(tags, 2));
        if (key.Complete(tags.Length) && _labels.TryGetValue(key, out var labels))
            return labels;
        labels = Labels(tags);
        if (key.Complete(tags.Length) && _labels.Count < MaxCachedLabels)
            _labels.TryAdd(key, labels);
        return labels;
    }

    private static (string, string)? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, int i) =>
        i < tags.Length && tags[i].Value is string value ? (tags[i].Key, value) : null;

    private readonly record struct TagKey((string, string)? First, (string, string)? Second, (string, string)? Third)
    {
        /// <summary>True when every tag is a string tag held in the key.</summary>
        public bool Complete(int count) => count == (First is null ? 0 : 1) + (Second is null ? 0 : 1) + (Third is null ? 0 : 1);
    }

    /// <summary>Label set in Prometheus syntax, sorted by name so one series always has one key.</summary>
    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0)
            return "";
        var sorted = tags.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var b = new StringBuilder("{");
        for (var i = 0; i < sorted.Length; i++)
        {
            if (i > 0)
                b.Append(',');
            b.Append(sorted[i].Key).Append("=\"");
            foreach (var c in Convert.ToString(sorted[i].Value, CultureInfo.InvariantCulture) ?? "")
            {
                _ = c switch
                {
                    '\\' => b.Append(@"\\"),
                    '"' => b.Append("\\\""),
                    '\n' => b.Append(@"\n"),
                    _ => b.Append(c),
                };
            }
            b.Append('"');
        }
        return b.Append('}').ToString();
    }

    private static string Format(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private sealed class InstrumentState(Instrument instrument)
    {
        private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);
        private readonly string _type = instrument switch
        {
            Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => "counter",
            Histogram<long> or Histogram<int> or Histogram<double> => "histogram",
            _ => "gauge",
        };
        private readonly double[] _buckets = instrument switch
        {
            Histogram<double> { Advice.HistogramBucketBoundaries: { } b } => [.. b],
            Histogram<long> { Advice.HistogramBucketBoundaries: { } b } => [.. b.Select(x => (double)x)],
            _ => DefaultBuckets,
        };

        public string Name => instrument.Name;

        public void Record(double value, string labels)
        {
            var series = _series.GetOrAdd(labels, _ => new Series(_type == "histogram" ? _buckets.Length : 0));
            lock (series)
            {
                if (_type == "histogram")
                {
                    var i = Array.FindIndex(_buckets, bound => value <= bound);
                    if (i >= 0)
                        series.Buckets[i]++;
                    series.Count++;
                    series.Value += value;
                }
                else if (instrument.IsObservable || _type == "gauge")
                {
                    series.Value = value; // observable counters report their running total
                }
                else
                {
                    series.Value += value;
                }
            }
        }

        public void WriteTo(StringBuilder text)
        {
            if (_series.IsEmpty)
                return;
            text.Append("# HELP ").Append(Name).Append(' ').Append(instrument.Description ?? Name).Append('\n');
            text.Append("# TYPE ").Append(Name).Append(' ').Append(_type).Append('\n');
            foreach (var (labels, series) in _series.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                lock (series)
                {
                    if (_type != "histogram")
                    {
                        text.Append(Name).Append(labels).Append(' ').Append(Format(series.Value)).Append('\n');
                        continue;
                    }
                    long cumulative = 0;
                    for (var i = 0; i < _buckets.Length; i++)
                    {
                        cumulative += series.Buckets[i];
                        Bucket(text, labels, Format(_buckets[i]), cumulative);
                    }
                    Bucket(text, labels, "+Inf", series.Count);
                    text.Append(Name).Append("_sum").Append(labels).Append(' ').Append(Format(series.Value)).Append('\n');
                    text.Append(Name).Append("_count").Append(labels).Append(' ').Append(series.Count).Append('\n');
                }
            }
        }

        private void Bucket(StringBuilder text, string labels, string le, long count)
        {
            text.Append(Name).Append("_bucket");
            text.Append(labels.Length == 0 ? "{" : labels[..^1] + ",").Append("le=\"").Append(le).Append("\"} ").Append(count).Append('\n');
        }
    }

    private sealed class Series(int buckets)
    {
        public readonly long[] Buckets = new long[buckets];
        public double Value;
        public long Count;
    }
}
