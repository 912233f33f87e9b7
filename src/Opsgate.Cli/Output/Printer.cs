using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Opsgate.Client;

namespace Opsgate.Cli.Output;

internal enum OutputFormat { Table, Wide, Json, Yaml }

/// <summary>Prints results as a kubectl-style table (aligned columns, no borders), JSON or YAML.</summary>
internal sealed class Printer(TextWriter output, OutputFormat format)
{
    private static readonly OpsgateJson Indented = new(new JsonSerializerOptions(OpsgateJson.Default.Options) { WriteIndented = true });

    public OutputFormat Format => format;

    public bool IsStructured => format is OutputFormat.Json or OutputFormat.Yaml;

    public static OutputFormat Parse(string? text) => text switch
    {
        null or "table" => OutputFormat.Table,
        "wide" => OutputFormat.Wide,
        "json" => OutputFormat.Json,
        "yaml" => OutputFormat.Yaml,
        _ => throw new UsageException($"-o {text}: must be table, wide, json or yaml"),
    };

    /// <summary>Writes <paramref name="value"/> as JSON or YAML (only for those formats).</summary>
    public void Structured<T>(T value, JsonTypeInfo<T> type)
    {
        if (format == OutputFormat.Json)
        {
            output.WriteLine(JsonSerializer.Serialize(value, (JsonTypeInfo<T>)Indented.GetTypeInfo(typeof(T))!));
            return;
        }
        YamlText.Write(output, JsonSerializer.SerializeToNode(value, type));
    }

    public void Node(JsonNode? node)
    {
        if (format == OutputFormat.Json)
            output.WriteLine(node?.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) ?? "null");
        else
            YamlText.Write(output, node);
    }

    /// <summary>Aligned columns, three spaces apart; the last column is not padded.</summary>
    public void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { headers };
        all.AddRange(rows);
        var widths = new int[headers.Count];
        foreach (var row in all)
            for (var i = 0; i < widths.Length; i++)
                widths[i] = Math.Max(widths[i], Cell(row, i).Length);
        var line = new StringBuilder();
        foreach (var row in all)
        {
            line.Clear();
            for (var i = 0; i < widths.Length; i++)
            {
                var cell = Cell(row, i);
                line.Append(i == widths.Length - 1 ? cell : cell.PadRight(widths[i] + 3));
            }
            output.WriteLine(line.ToString().TrimEnd());
        }
    }

    private static string Cell(IReadOnlyList<string> row, int i) => i < row.Count ? row[i].ReplaceLineEndings(" ") : "";

    /// <summary>kubectl's ages: 45s, 12m, 3h, 5d.</summary>
    public static string Age(DateTime? at, DateTime now)
    {
        if (at is null)
            return "<none>";
        var span = now - at.Value;
        if (span < TimeSpan.Zero)
            span = TimeSpan.Zero;
        return span.TotalSeconds < 120 ? $"{(int)span.TotalSeconds}s"
            : span.TotalMinutes < 120 ? $"{(int)span.TotalMinutes}m"
            : span.TotalHours < 48 ? $"{(int)span.TotalHours}h"
            : $"{(int)span.TotalDays}d";
    }

    public static string Duration(DateTime? from, DateTime? to)
    {
        if (from is null || to is null)
            return "";
        var span = to.Value - from.Value;
        return span.TotalSeconds < 60 ? span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s"
            : span.TotalMinutes < 60 ? $"{(int)span.TotalMinutes}m{span.Seconds}s"
            : $"{(int)span.TotalHours}h{span.Minutes}m";
    }
}
