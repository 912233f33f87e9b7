using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Patching;

/// <summary>The patch types the apiserver accepts, by Content-Type.</summary>
internal static class Patches
{
    public const string Merge = "application/merge-patch+json";
    public const string Strategic = "application/strategic-merge-patch+json";
    public const string Json = "application/json-patch+json";
    public const string Apply = "application/apply-patch+yaml";

    public static JsonObject ApplyTo(JsonObject target, string contentType, string body)
    {
        var mediaType = contentType.Split(';')[0].Trim().ToLowerInvariant();
        var patch = Manifests.ParseBody(body, null);
        return mediaType switch
        {
            Merge => MergePatch.Apply(target, patch) as JsonObject ?? throw KubeApiException.BadRequest("merge patch must be an object"),
            Strategic => StrategicMergePatch.Apply(target, patch as JsonObject ?? throw KubeApiException.BadRequest("strategic merge patch must be an object")),
            Json => JsonPatch.Apply(target, patch as JsonArray ?? throw KubeApiException.BadRequest("json patch must be an array")),
            _ => throw KubeApiException.UnsupportedMediaType(contentType),
        };
    }
}

/// <summary>RFC 7386 JSON merge patch: objects merge, null removes, everything else replaces.</summary>
internal static class MergePatch
{
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject p) return patch?.DeepClone();
        var result = target is JsonObject t ? (JsonObject)t.DeepClone() : [];
        foreach (var (k, v) in p)
        {
            if (v is null) result.Remove(k);
            else result[k] = Apply(result[k], v);
        }
        return result;
    }
}

/// <summary>RFC 6902 JSON patch (add, remove, replace, move, copy, test).</summary>
internal static class JsonPatch
{
    public static JsonObject Apply(JsonObject target, JsonArray operations)
    {
        JsonNode root = target.DeepClone();
        foreach (var op in operations.Objects())
        {
            var path = op.Str("path") ?? throw KubeApiException.BadRequest("json patch operation without path");
            switch (op.Str("op"))
            {
                case "add": root = Add(root, path, op["value"]?.DeepClone()); break;
                case "remove": Remove(root, path); break;
                case "replace": Remove(root, path); root = Add(root, path, op["value"]?.DeepClone()); break;
                case "move":
                    var moved = Get(root, op.Str("from") ?? "")?.DeepClone();
                    Remove(root, op.Str("from") ?? "");
                    root = Add(root, path, moved);
                    break;
                case "copy": root = Add(root, path, Get(root, op.Str("from") ?? "")?.DeepClone()); break;
                case "test":
                    if (!JsonNode.DeepEquals(Get(root, path), op["value"])) throw new KubeApiException(422, "Invalid", $"the server rejected our request due to an error in our request: testing value {path} failed");
                    break;
                default: throw KubeApiException.BadRequest($"unknown json patch op {op.Str("op")}");
            }
        }
        return root as JsonObject ?? throw KubeApiException.BadRequest("json patch result is not an object");
    }

    private static string[] Tokens(string path) =>
        path.Length == 0 ? [] : path[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();

    private static JsonNode? Get(JsonNode root, string path)
    {
        JsonNode? node = root;
        foreach (var t in Tokens(path))
        {
            node = node switch
            {
                JsonObject o => o.TryGetPropertyValue(t, out var c) ? c : throw Missing(path),
                JsonArray a when int.TryParse(t, out var i) && i >= 0 && i < a.Count => a[i],
                _ => throw Missing(path),
            };
        }
        return node;
    }

    private static JsonNode Add(JsonNode root, string path, JsonNode? value)
    {
        var tokens = Tokens(path);
        if (tokens.Length == 0) return value ?? throw KubeApiException.BadRequest("cannot replace the document with null");
        var parent = Get(root, Parent(tokens));
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o: o[last] = value; break;
            case JsonArray a when last == "-": a.Add(value); break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i <= a.Count: a.Insert(i, value); break;
            default: throw Missing(path);
        }
        return root;
    }

    private static void Remove(JsonNode root, string path)
    {
        var tokens = Tokens(path);
        if (tokens.Length == 0) throw Missing(path);
        var parent = Get(root, Parent(tokens));
        var last = tokens[^1];
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last): o.Remove(last); break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i < a.Count: a.RemoveAt(i); break;
            default: throw Missing(path);
        }
    }

    private static string Parent(string[] tokens) =>
        tokens.Length <= 1 ? "" : "/" + string.Join('/', tokens[..^1].Select(Escape));

    private static string Escape(string t) => t.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static KubeApiException Missing(string path) =>
        new(422, "Invalid", $"the server rejected our request due to an error in our request: path {path} does not exist");
}
