using System.Text.Json;
using System.Text.Json.Nodes;

namespace Opsgate.Server.Engine;

/// <summary>A job's stored JSON columns read back.</summary>
internal static class JobJson
{
    public static JsonObject Params(string json) => JsonNode.Parse(json) as JsonObject ?? [];

    /// <summary>A step's outputs; text that is not JSON comes back as a string rather than failing the read.</summary>
    public static JsonNode? Output(string? json)
    {
        try
        {
            return json is null ? null : JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
