using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Api;

/// <summary>
/// Legacy (unaggregated) API discovery: /api, /apis, /apis/{group} and the group-version resource lists.
/// Clients that ask for aggregated discovery (apidiscovery.k8s.io/v2) fall back to these when the
/// answer's Content-Type is plain application/json, as client-go does against older servers.
/// </summary>
internal static class Discovery
{
    private static readonly string[] AllVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
    private static readonly string[] SubresourceVerbs = ["get", "patch", "update"];

    public const string GitVersion = "v1.32.0-kubesim";

    public static JsonObject Version() => new()
    {
        ["major"] = "1",
        ["minor"] = "32",
        ["gitVersion"] = GitVersion,
        ["gitCommit"] = "0000000000000000000000000000000000000000",
        ["gitTreeState"] = "clean",
        ["buildDate"] = "2024-12-11T00:00:00Z",
        ["goVersion"] = "go1.23.4",
        ["compiler"] = "gc",
        ["platform"] = "linux/amd64",
    };

    public static JsonObject CoreVersions(string serverAddress) => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = serverAddress }),
    };

    public static JsonObject Groups() => new()
    {
        ["kind"] = "APIGroupList",
        ["apiVersion"] = "v1",
        ["groups"] = new JsonArray(GroupNames().Select(g => (JsonNode?)Group(g)).ToArray()),
    };

    public static JsonObject? Group(string group)
    {
        if (!GroupNames().Contains(group)) return null;
        var versions = ResourceTypes.GroupVersions.Where(gv => gv.Group == group)
            .Select(gv => new JsonObject { ["groupVersion"] = $"{group}/{gv.Version}", ["version"] = gv.Version }).ToList();
        return new JsonObject
        {
            ["kind"] = "APIGroup",
            ["apiVersion"] = "v1",
            ["name"] = group,
            ["versions"] = new JsonArray(versions.Select(v => (JsonNode)v).ToArray()),
            ["preferredVersion"] = versions[0].DeepClone(),
        };
    }

    public static JsonObject? Resources(string group, string version)
    {
        var types = ResourceTypes.All.Where(t => t.Group == group && t.Version == version).ToList();
        if (types.Count == 0) return null;
        var resources = new JsonArray();
        foreach (var t in types)
        {
            var entry = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = Strings(t.Plural == "namespaces" ? AllVerbs.Where(v => v != "deletecollection") : AllVerbs),
            };
            if (t.ShortNames.Count > 0) entry["shortNames"] = Strings(t.ShortNames);
            if (t.Plural is "pods" or "deployments" or "statefulsets") entry["categories"] = Strings(["all"]);
            resources.Add(entry);
            if (t.HasStatus) resources.Add(Subresource(t, "status", null));
            if (t.HasScale) resources.Add(Subresource(t, "scale", ("autoscaling", "v1", "Scale")));
            if (t == ResourceTypes.ServiceAccounts)
            {
                var token = Subresource(t, "token", ("authentication.k8s.io", "v1", "TokenRequest"));
                token["verbs"] = Strings(["create"]);
                resources.Add(token);
            }
        }
        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = resources,
        };
    }

    private static JsonObject Subresource(ResourceType t, string name, (string Group, string Version, string Kind)? kind)
    {
        var entry = new JsonObject
        {
            ["name"] = $"{t.Plural}/{name}",
            ["singularName"] = "",
            ["namespaced"] = t.Namespaced,
        };
        if (kind is { } k)
        {
            entry["group"] = k.Group;
            entry["version"] = k.Version;
        }
        entry["kind"] = kind?.Kind ?? t.Kind;
        entry["verbs"] = Strings(SubresourceVerbs);
        return entry;
    }

    private static List<string> GroupNames() => ResourceTypes.All.Select(t => t.Group).Where(g => g.Length > 0).Distinct().ToList();

    private static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode)v).ToArray());
}
