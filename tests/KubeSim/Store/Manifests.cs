using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KubeSim.Store;

/// <summary>Reads YAML (multi-document) or JSON manifests into objects; <c>kind: List</c> is expanded.</summary>
internal static partial class Manifests
{
    public static List<JsonObject> Parse(string text)
    {
        var result = new List<JsonObject>();
        var trimmed = text.TrimStart();
        if (trimmed.StartsWith('{'))
        {
            var node = JsonNode.Parse(text) as JsonObject ?? throw KubeApiException.BadRequest("expected a JSON object");
            Expand(node, result);
            return result;
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw KubeApiException.BadRequest($"invalid YAML: {e.Message}");
        }
        foreach (var doc in stream.Documents)
        {
            if (ToJson(doc.RootNode) is JsonObject o) Expand(o, result);
        }
        return result;
    }

    /// <summary>A request body in JSON or YAML as one object.</summary>
    public static JsonNode? ParseBody(string text, string? contentType)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (contentType is not null && contentType.Contains("yaml", StringComparison.OrdinalIgnoreCase))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            return stream.Documents.Count == 0 ? null : ToJson(stream.Documents[0].RootNode);
        }
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            throw KubeApiException.BadRequest($"couldn't get version/kind; json parse error: {e.Message}");
        }
    }

    private static void Expand(JsonObject o, List<JsonObject> into)
    {
        if (o.Str("kind") is { } kind && kind.EndsWith("List", StringComparison.Ordinal) && o["items"] is JsonArray items)
        {
            foreach (var item in items.OfType<JsonObject>()) into.Add(item.CloneObject());
            return;
        }
        into.Add(o);
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(ToJson).ToArray()),
        YamlScalarNode v => Scalar(v),
        _ => null,
    };

    private static JsonValue? Scalar(YamlScalarNode v)
    {
        var text = v.Value ?? "";
        if (v.Style is not ScalarStyle.Plain) return JsonValue.Create(text);
        if (text is "" or "~" or "null" or "Null" or "NULL") return null;
        if (text is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (text is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (IntPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return JsonValue.Create(l);
        }
        if (FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return JsonValue.Create(d);
        }
        return JsonValue.Create(text);
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
