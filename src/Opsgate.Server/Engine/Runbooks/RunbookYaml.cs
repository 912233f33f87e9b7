using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Opsgate.Server.Yaml;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>
/// The YAML side of loading a runbook: parsing with limits, reading typed scalars, and turning values into JSON,
/// with every problem reported as <c>SOURCE line N: ...</c>. Runbooks from a directory are trusted less than code,
/// so the parser refuses what could blow up: oversized files, aliases (billion laughs), deep nesting.
/// </summary>
internal sealed partial class RunbookYaml(string source)
{
    public const int MaxBytes = 256 * 1024;
    private const int MaxDepth = 32;

    public string Source { get; } = source;

    public RunbookException Error(YamlNode node, string problem) => new(Source, node.Start.Line, problem);

    /// <summary>The one document's top-level mapping.</summary>
    public YamlMappingNode ParseDocument(string yaml)
    {
        if (Encoding.UTF8.GetByteCount(yaml) > MaxBytes)
            throw new RunbookException(Source, null, $"is larger than {MaxBytes / 1024} KiB");
        YamlStream stream;
        try
        {
            stream = SafeYaml.Load(yaml, MaxDepth);
        }
        catch (SafeYamlException e) when (e.Reason.StartsWith("YAML aliases", StringComparison.Ordinal) || e.Reason.StartsWith("nested deeper", StringComparison.Ordinal))
        {
            throw new RunbookException(Source, e.Line, e.Reason);
        }
        catch (SafeYamlException e)
        {
            throw new RunbookException(Source, e.Line, $"not valid YAML (column {e.Column}): {e.Reason}");
        }
        if (stream.Documents.Count == 0)
            throw new RunbookException(Source, 1, "is empty: a runbook needs at least a name and steps");
        if (stream.Documents.Count > 1)
            throw Error(stream.Documents[1].RootNode, "holds more than one YAML document: put each runbook in its own file");
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw Error(stream.Documents[0].RootNode, "must be a mapping with name, parameters, options and steps");
    }

    /// <summary>The keys of a mapping, refusing any not in <paramref name="allowed"/>.</summary>
    public Dictionary<string, YamlNode> Fields(YamlNode node, string what, params string[] allowed)
    {
        if (node is not YamlMappingNode mapping)
            throw Error(node, $"{what} must be a mapping with keys {string.Join(", ", allowed)}");
        var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in mapping.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value;
            if (key is null || !allowed.Contains(key, StringComparer.Ordinal))
                throw Error(keyNode, $"unknown key '{keyNode}' in {what} (allowed: {string.Join(", ", allowed)})");
            fields[key] = value;
        }
        return fields;
    }

    public YamlNode Required(Dictionary<string, YamlNode> fields, YamlNode owner, string key, string what) =>
        fields.TryGetValue(key, out var value) ? value : throw Error(owner, $"{what} needs '{key}'");

    /// <summary>A non-empty string scalar.</summary>
    public string Text(YamlNode node, string what)
    {
        if (node is not YamlScalarNode scalar || IsNull(scalar))
            throw Error(node, $"{what} must be a non-empty string");
        return scalar.Value!;
    }

    public bool Bool(YamlNode node, string what) =>
        ToJson(node) is JsonValue value && value.TryGetValue<bool>(out var b) ? b : throw Error(node, $"{what} must be true or false");

    public long Integer(YamlNode node, string what, long min, long max)
    {
        if (ToJson(node) is JsonValue value && value.TryGetValue<long>(out var n) && n >= min && n <= max)
            return n;
        throw Error(node, $"{what} must be an integer between {min} and {max}");
    }

    public TimeSpan Duration(YamlNode node, string what, bool allowZero)
    {
        var text = node is YamlScalarNode { Value: { } v } ? v : null;
        if (!Durations.TryParse(text, out var value) || (!allowZero && value == TimeSpan.Zero))
            throw Error(node, $"{what} must be a{(allowZero ? "" : " positive")} duration such as {Durations.Examples}, not '{text}'");
        return value;
    }

    /// <summary>
    /// A YAML value as JSON, with YAML 1.2 core-schema typing for plain scalars (<c>5</c> is a number, <c>true</c> a bool,
    /// <c>~</c> null) and quoted or block scalars always strings. <paramref name="onString"/> sees every string with its node.
    /// </summary>
    public JsonNode? ToJson(YamlNode node, Action<YamlScalarNode, string>? onString = null)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                var obj = new JsonObject();
                foreach (var (key, value) in mapping.Children)
                {
                    if (key is not YamlScalarNode { Value: { } name })
                        throw Error(key, "mapping keys must be plain strings");
                    obj[name] = ToJson(value, onString);
                }
                return obj;
            case YamlSequenceNode sequence:
                var array = new JsonArray();
                foreach (var item in sequence.Children)
                    array.Add(ToJson(item, onString));
                return array;
            case YamlScalarNode scalar:
                return Scalar(scalar, onString);
            default:
                throw Error(node, "unsupported YAML node");
        }
    }

    private JsonNode? Scalar(YamlScalarNode scalar, Action<YamlScalarNode, string>? onString)
    {
        var text = scalar.Value ?? "";
        var isString = scalar.Style != ScalarStyle.Plain;
        if (!scalar.Tag.IsEmpty)
        {
            if (scalar.Tag.Value != "tag:yaml.org,2002:str")
                throw Error(scalar, $"YAML tags such as {scalar.Tag} are not supported (quote a value to make it a string)");
            isString = true;
        }
        if (!isString)
        {
            if (IsNull(scalar))
                return null;
            if (text is "true" or "True" or "TRUE")
                return JsonValue.Create(true);
            if (text is "false" or "False" or "FALSE")
                return JsonValue.Create(false);
            if (IntegerText().IsMatch(text))
            {
                // Parsed from JSON text so the node is JsonElement-backed, like everything a job gets from the API.
                return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                    ? JsonNode.Parse(n.ToString(CultureInfo.InvariantCulture))
                    : throw Error(scalar, $"{text} is too large a number");
            }
            if (FloatText().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d))
            {
                // "R" writes 5.0 as "5"; keep it a non-integer so "replicas: 5.0" is refused here as it is from the API.
                var json = d.ToString("R", CultureInfo.InvariantCulture);
                return JsonNode.Parse(json.Contains('.', StringComparison.Ordinal) || json.Contains('E', StringComparison.Ordinal) ? json : json + ".0");
            }
        }
        onString?.Invoke(scalar, text);
        return JsonValue.Create(text);
    }

    public static bool IsNull(YamlScalarNode scalar) =>
        scalar.Style == ScalarStyle.Plain && scalar.Tag.IsEmpty && scalar.Value is null or "" or "~" or "null" or "Null" or "NULL";

    [GeneratedRegex("^[-+]?[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex IntegerText();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex FloatText();
}
