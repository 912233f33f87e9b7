using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Api;

/// <summary>
/// A minimal OpenAPI v3: the root index and, per group version, the PATCH operation of each resource with
/// its GVK and the <c>fieldValidation</c> query parameter. That is what kubectl apply reads to decide the
/// server validates fields itself (so it skips client-side schema validation, which would need the
/// full schemas). No schemas are served; the patch content types deliberately leave out strategic merge
/// so kubectl computes apply patches from its built-in types. OpenAPI v2 is not served (404).
/// </summary>
internal static class OpenApi
{
    private const string Hash = "kubesim-1";

    public static JsonObject? Document(string[] segments) => segments switch
    {
        ["openapi", "v3"] => Root(),
        ["openapi", "v3", "api", var v] => GroupVersion("", v),
        ["openapi", "v3", "apis", var g, var v] => GroupVersion(g, v),
        _ => null,
    };

    private static JsonObject Root()
    {
        var paths = new JsonObject();
        foreach (var (group, version) in ResourceTypes.GroupVersions)
        {
            var prefix = group.Length == 0 ? $"api/{version}" : $"apis/{group}/{version}";
            paths[prefix] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{prefix}?hash={Hash}" };
        }
        return new JsonObject { ["paths"] = paths };
    }

    private static JsonObject? GroupVersion(string group, string version)
    {
        var types = ResourceTypes.All.Where(t => t.Group == group && t.Version == version).ToList();
        if (types.Count == 0) return null;
        var paths = new JsonObject();
        foreach (var t in types)
        {
            var prefix = group.Length == 0 ? $"/api/{version}" : $"/apis/{group}/{version}";
            var item = t.Namespaced ? $"{prefix}/namespaces/{{namespace}}/{t.Plural}/{{name}}" : $"{prefix}/{t.Plural}/{{name}}";
            paths[item] = new JsonObject
            {
                ["patch"] = new JsonObject
                {
                    ["operationId"] = $"patch{t.Kind}",
                    ["x-kubernetes-action"] = "patch",
                    ["x-kubernetes-group-version-kind"] = new JsonObject { ["group"] = group, ["version"] = version, ["kind"] = t.Kind },
                    ["parameters"] = new JsonArray(
                        Query("dryRun"), Query("fieldManager"), Query("fieldValidation"), Query("force")),
                    ["requestBody"] = new JsonObject
                    {
                        ["content"] = new JsonObject
                        {
                            ["application/json-patch+json"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object" } },
                            ["application/merge-patch+json"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object" } },
                            ["application/apply-patch+yaml"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object" } },
                        },
                        ["required"] = true,
                    },
                    ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "OK" } },
                },
            };
        }
        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = Discovery.GitVersion },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = new JsonObject() },
        };
    }

    private static JsonObject Query(string name) => new()
    {
        ["name"] = name,
        ["in"] = "query",
        ["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true },
    };
}
