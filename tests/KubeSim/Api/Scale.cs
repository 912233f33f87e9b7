using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Api;

/// <summary>The autoscaling/v1 Scale view of a deployment or statefulset.</summary>
internal static class Scale
{
    public static JsonObject From(JsonObject obj) => new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject
        {
            ["name"] = obj.Name(),
            ["namespace"] = obj.Namespace(),
            ["uid"] = obj.Uid(),
            ["resourceVersion"] = obj.Str("metadata", "resourceVersion"),
            ["creationTimestamp"] = obj.Str("metadata", "creationTimestamp"),
        },
        ["spec"] = new JsonObject { ["replicas"] = obj.Long("spec", "replicas") ?? 0 },
        ["status"] = new JsonObject
        {
            ["replicas"] = obj.Long("status", "replicas") ?? 0,
            ["selector"] = LabelSelector.FromObject(obj.At("spec", "selector")).ToString(),
        },
    };

    /// <summary>Sets the parent's replicas from a (new) Scale; a stale Scale resourceVersion is a 409.</summary>
    public static JsonObject ApplyTo(ResourceType type, JsonObject parent, JsonObject scale)
    {
        var rv = scale.Str("metadata", "resourceVersion");
        if (!string.IsNullOrEmpty(rv) && rv != parent.Str("metadata", "resourceVersion")) throw KubeApiException.Modified(type, parent.Name());
        var replicas = scale.Long("spec", "replicas") ?? 0;
        if (replicas < 0)
        {
            throw new KubeApiException(422, "Invalid", $"Scale.autoscaling \"{parent.Name()}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0");
        }
        parent.Obj("spec")["replicas"] = replicas;
        return parent;
    }
}
