using System.Globalization;
using System.Text.Json.Nodes;

namespace KubeSim.Store;

/// <summary>Small accessors for Kubernetes objects held as <see cref="JsonObject"/>.</summary>
internal static class JsonExtensions
{
    public static JsonNode? At(this JsonNode? node, params ReadOnlySpan<string> path)
    {
        foreach (var key in path)
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(key, out node)) return null;
        }
        return node;
    }

    public static string? Str(this JsonNode? node, params ReadOnlySpan<string> path) =>
        node.At(path) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static long? Long(this JsonNode? node, params ReadOnlySpan<string> path)
    {
        if (node.At(path) is not JsonValue v) return null;
        if (v.TryGetValue<long>(out var l)) return l;
        if (v.TryGetValue<int>(out var i)) return i;
        if (v.TryGetValue<double>(out var d) && d == Math.Floor(d)) return (long)d;
        return null;
    }

    public static bool? Bool(this JsonNode? node, params ReadOnlySpan<string> path) =>
        node.At(path) is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    /// <summary>The child object under <paramref name="key"/>, created when missing or not an object.</summary>
    public static JsonObject Obj(this JsonObject o, string key)
    {
        if (o[key] is JsonObject child) return child;
        var created = new JsonObject();
        o[key] = created;
        return created;
    }

    public static JsonArray Arr(this JsonObject o, string key)
    {
        if (o[key] is JsonArray child) return child;
        var created = new JsonArray();
        o[key] = created;
        return created;
    }

    public static IEnumerable<JsonObject> Objects(this JsonNode? node) =>
        node is JsonArray a ? a.OfType<JsonObject>() : [];

    public static JsonObject Meta(this JsonObject o) => o.Obj("metadata");

    public static string Name(this JsonObject o) => o.Str("metadata", "name") ?? "";

    public static string Namespace(this JsonObject o) => o.Str("metadata", "namespace") ?? "";

    public static string Uid(this JsonObject o) => o.Str("metadata", "uid") ?? "";

    public static bool IsTerminating(this JsonObject o) => o.Str("metadata", "deletionTimestamp") is not null;

    public static Dictionary<string, string> Labels(this JsonObject o) => StringMap(o.At("metadata", "labels"));

    public static Dictionary<string, string> StringMap(JsonNode? node)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (node is JsonObject o)
        {
            foreach (var (k, v) in o)
            {
                map[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString() ?? "";
            }
        }
        return map;
    }

    public static JsonObject CloneObject(this JsonObject o) => (JsonObject)o.DeepClone();

    public static string Timestamp(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset? ParseTimestamp(string? s) =>
        DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;
}
