using System.Text.Json.Nodes;

namespace KubeSim.Store;

/// <summary>
/// A Kubernetes API error: carries what the apiserver puts in a <c>Status</c> object
/// (reason, HTTP code, details) and renders it with <see cref="ToStatus"/>.
/// </summary>
public sealed class KubeApiException : Exception
{
    public KubeApiException(int code, string reason, string message, JsonObject? details = null) : base(message)
    {
        Code = code;
        Reason = reason;
        Details = details;
    }

    public KubeApiException() : this(500, "InternalError", "internal error") { }

    public KubeApiException(string message) : this(500, "InternalError", message) { }

    public KubeApiException(string message, Exception inner) : base(message, inner)
    {
        Code = 500;
        Reason = "InternalError";
    }

    public int Code { get; }
    public string Reason { get; }
    public JsonObject? Details { get; }

    public JsonObject ToStatus() => Status(Code, Reason, Message, Details?.DeepClone());

    internal static JsonObject Status(int code, string reason, string message, JsonNode? details = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (details is not null) status["details"] = details;
        status["code"] = code;
        return status;
    }

    internal static KubeApiException NotFound(ResourceType type, string name) =>
        new(404, "NotFound", $"{type.GroupResource} \"{name}\" not found", Describe(type, name));

    internal static KubeApiException NotFoundPath(string message) => new(404, "NotFound", message, new JsonObject());

    internal static KubeApiException AlreadyExists(ResourceType type, string name) =>
        new(409, "AlreadyExists", $"{type.GroupResource} \"{name}\" already exists", Describe(type, name));

    internal static KubeApiException Conflict(ResourceType type, string name, string why) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {type.GroupResource} \"{name}\": {why}", Describe(type, name));

    internal static KubeApiException Modified(ResourceType type, string name) =>
        Conflict(type, name, "the object has been modified; please apply your changes to the latest version and try again");

    internal static KubeApiException Invalid(ResourceType type, string name, IReadOnlyList<(string Field, string Message)> causes)
    {
        var details = Describe(type, name, type.Kind);
        details["causes"] = new JsonArray(causes.Select(c => (JsonNode)new JsonObject
        {
            ["reason"] = "FieldValueInvalid",
            ["message"] = c.Message,
            ["field"] = c.Field,
        }).ToArray());
        var list = string.Join(", ", causes.Select(c => $"{c.Field}: {c.Message}"));
        var text = causes.Count == 1 ? list : $"[{list}]";
        return new(422, "Invalid", $"{type.GroupKind} \"{name}\" is invalid: {text}", details);
    }

    internal static KubeApiException BadRequest(string message) => new(400, "BadRequest", message);

    internal static KubeApiException Forbidden(ResourceType type, string name, string why) =>
        new(403, "Forbidden", $"{type.GroupResource} \"{name}\" is forbidden: {why}", Describe(type, name));

    internal static KubeApiException MethodNotAllowed(string message) => new(405, "MethodNotAllowed", message);

    internal static KubeApiException Unauthorized() => new(401, "Unauthorized", "Unauthorized");

    internal static KubeApiException Expired(string message) => new(410, "Expired", message);

    internal static KubeApiException UnsupportedMediaType(string contentType) =>
        new(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {contentType})");

    private static JsonObject Describe(ResourceType type, string name, string? kind = null)
    {
        var details = new JsonObject { ["name"] = name };
        if (type.Group.Length > 0) details["group"] = type.Group;
        details["kind"] = kind ?? type.Plural;
        return details;
    }
}
