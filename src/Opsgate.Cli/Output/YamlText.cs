using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Cli.Output;

/// <summary>
/// JSON to YAML and back through YamlDotNet's event and node layers only (no reflection-based serializer): `-o yaml`
/// and parameter files.
/// </summary>
internal static partial class YamlText
{
    private const long MaxParamFileBytes = 1 << 20;

    public static void Write(TextWriter writer, JsonNode? node)
    {
        var emitter = new Emitter(writer);
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart());
        Emit(emitter, node);
        emitter.Emit(new DocumentEnd(true));
        emitter.Emit(new StreamEnd());
    }

    private static void Emit(IEmitter emitter, JsonNode? node)
    {
        switch (node)
        {
            case null:
                emitter.Emit(new Scalar(null, null, "null", ScalarStyle.Plain, true, false));
                break;
            case JsonObject obj:
                emitter.Emit(new MappingStart(null, null, true, obj.Count == 0 ? MappingStyle.Flow : MappingStyle.Block));
                foreach (var (key, value) in obj)
                {
                    emitter.Emit(new Scalar(key));
                    Emit(emitter, value);
                }
                emitter.Emit(new MappingEnd());
                break;
            case JsonArray array:
                emitter.Emit(new SequenceStart(null, null, true, array.Count == 0 ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in array)
                    Emit(emitter, item);
                emitter.Emit(new SequenceEnd());
                break;
            case JsonValue value:
                // GetValueKind works for values parsed from JSON and values made in code alike (GetValue<JsonElement> does not).
                if (value.GetValueKind() == JsonValueKind.String)
                {
                    var text = value.GetValue<string>();
                    // A string that plain YAML would read as something else (a number, true, null, empty) is quoted.
                    var style = text.Length == 0 || LooksTyped(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any;
                    emitter.Emit(new Scalar(null, null, text, style, true, true));
                }
                else
                {
                    emitter.Emit(new Scalar(null, null, value.ToJsonString(), ScalarStyle.Plain, true, false));
                }
                break;
        }
    }

    /// <summary>A parameter file: a YAML mapping of parameter names to values.</summary>
    public static JsonObject ReadParamFile(string path)
    {
        if (!File.Exists(path))
            throw new UsageException($"--param-file {path}: no such file");
        if (new FileInfo(path).Length > MaxParamFileBytes)
            throw new UsageException($"--param-file {path}: larger than 1 MiB");
        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlException e)
        {
            throw new UsageException($"--param-file {path}:{e.Start.Line}: {e.Message}");
        }
        if (yaml.Documents.Count == 0)
            return [];
        if (yaml.Documents[0].RootNode is not YamlMappingNode root)
            throw new UsageException($"--param-file {path}: must be a mapping of parameter names to values");
        return (JsonObject)ToJson(root, depth: 0)!;
    }

    private static JsonNode? ToJson(YamlNode node, int depth)
    {
        // Alias expansion is bounded by the file size limit; nesting is bounded here.
        if (depth > 64)
            throw new UsageException("parameter file: nested deeper than 64 levels");
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (key, value) in map.Children)
                    obj[key is YamlScalarNode { Value: { } k } ? k : key.ToString()] = ToJson(value, depth + 1);
                return obj;
            case YamlSequenceNode seq:
                var array = new JsonArray();
                foreach (var item in seq.Children)
                    array.Add(ToJson(item, depth + 1));
                return array;
            case YamlScalarNode scalar:
                var text = scalar.Value ?? "";
                return scalar.Style is ScalarStyle.Plain ? Infer(text) : JsonValue.Create(text);
            default:
                return null;
        }
    }

    /// <summary>A plain YAML scalar's JSON value (YAML 1.2 core schema): null, true/false, integers, floats, else text.</summary>
    public static JsonNode? Infer(string text)
    {
        if (text is "" or "~" or "null" or "Null" or "NULL")
            return null;
        if (text is "true" or "True" or "TRUE")
            return JsonValue.Create(true);
        if (text is "false" or "False" or "FALSE")
            return JsonValue.Create(false);
        if (IntPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
            return JsonValue.Create(l);
        if (FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
            return JsonValue.Create(d);
        return JsonValue.Create(text);
    }

    private static bool LooksTyped(string text) => Infer(text) is not JsonValue v || v.GetValueKind() != JsonValueKind.String
        || text.Trim() != text || text.Contains('\n', StringComparison.Ordinal);

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
