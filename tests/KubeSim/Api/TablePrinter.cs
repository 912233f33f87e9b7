using System.Globalization;
using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Api;

/// <summary>
/// Server-side printing: the meta.k8s.io/v1 Table that <c>kubectl get</c> asks for, with the columns
/// the real apiserver prints for these resources (priority 1 = only with <c>-o wide</c>).
/// </summary>
internal static class TablePrinter
{
    private sealed record Column(string Name, string Type, int Priority, Func<JsonObject, DateTimeOffset, JsonNode?> Cell, string Format = "");

    private static readonly Column NameColumn = new("Name", "string", 0, (o, _) => o.Name(), "name");
    private static readonly Column AgeColumn = new("Age", "string", 0, (o, now) => Age(o, now));

    public static JsonObject Table(ResourceType type, IEnumerable<JsonObject> objects, long resourceVersion, string? includeObject, DateTimeOffset now)
    {
        var columns = ColumnsFor(type);
        var rows = new JsonArray();
        foreach (var o in objects)
        {
            var row = new JsonObject { ["cells"] = new JsonArray(columns.Select(c => c.Cell(o, now)).ToArray()) };
            switch (includeObject)
            {
                case "None": break;
                case "Object": row["object"] = o.DeepClone(); break;
                default:
                    row["object"] = new JsonObject
                    {
                        ["kind"] = "PartialObjectMetadata",
                        ["apiVersion"] = "meta.k8s.io/v1",
                        ["metadata"] = o["metadata"]?.DeepClone(),
                    };
                    break;
            }
            rows.Add(row);
        }
        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion.ToString(CultureInfo.InvariantCulture) },
            ["columnDefinitions"] = new JsonArray(columns.Select(c => (JsonNode)new JsonObject
            {
                ["name"] = c.Name,
                ["type"] = c.Type,
                ["format"] = c.Format,
                ["description"] = c.Name,
                ["priority"] = c.Priority,
            }).ToArray()),
            ["rows"] = rows,
        };
    }

    private static Column[] ColumnsFor(ResourceType type) => type.Plural switch
    {
        "pods" =>
        [
            NameColumn,
            new("Ready", "string", 0, (o, _) => $"{ContainerStatuses(o).Count(c => c.Bool("ready") == true)}/{(o.At("spec", "containers") is JsonArray a ? a.Count : 0)}"),
            new("Status", "string", 0, (o, _) => PodStatus(o)),
            new("Restarts", "string", 0, (o, _) => ContainerStatuses(o).Sum(c => c.Long("restartCount") ?? 0).ToString(CultureInfo.InvariantCulture)),
            AgeColumn,
            new("IP", "string", 1, (o, _) => o.Str("status", "podIP") ?? "<none>"),
            new("Node", "string", 1, (o, _) => o.Str("spec", "nodeName") ?? "<none>"),
            new("Nominated Node", "string", 1, (_, _) => "<none>"),
            new("Readiness Gates", "string", 1, (_, _) => "<none>"),
        ],
        "deployments" =>
        [
            NameColumn,
            new("Ready", "string", 0, (o, _) => $"{o.Long("status", "readyReplicas") ?? 0}/{o.Long("spec", "replicas") ?? 0}"),
            new("Up-to-date", "integer", 0, (o, _) => o.Long("status", "updatedReplicas") ?? 0),
            new("Available", "integer", 0, (o, _) => o.Long("status", "availableReplicas") ?? 0),
            AgeColumn,
            new("Containers", "string", 1, (o, _) => Containers(o, "name")),
            new("Images", "string", 1, (o, _) => Containers(o, "image")),
            new("Selector", "string", 1, (o, _) => LabelSelector.FromObject(o.At("spec", "selector")).ToString()),
        ],
        "statefulsets" =>
        [
            NameColumn,
            new("Ready", "string", 0, (o, _) => $"{o.Long("status", "readyReplicas") ?? 0}/{o.Long("spec", "replicas") ?? 0}"),
            AgeColumn,
            new("Containers", "string", 1, (o, _) => Containers(o, "name")),
            new("Images", "string", 1, (o, _) => Containers(o, "image")),
        ],
        "persistentvolumeclaims" =>
        [
            NameColumn,
            new("Status", "string", 0, (o, _) => o.IsTerminating() ? "Terminating" : o.Str("status", "phase") ?? ""),
            new("Volume", "string", 0, (o, _) => o.Str("spec", "volumeName") ?? ""),
            new("Capacity", "string", 0, (o, _) => o.Str("status", "capacity", "storage") ?? ""),
            new("Access Modes", "string", 0, (o, _) => AccessModes(o.At("status", "accessModes"))),
            new("StorageClass", "string", 0, (o, _) => o.Str("spec", "storageClassName") ?? "<unset>"),
            AgeColumn,
            new("VolumeMode", "string", 1, (o, _) => o.Str("spec", "volumeMode") ?? ""),
        ],
        "namespaces" => [NameColumn, new("Status", "string", 0, (o, _) => o.Str("status", "phase") ?? ""), AgeColumn],
        "secrets" =>
        [
            NameColumn,
            new("Type", "string", 0, (o, _) => o.Str("type") ?? ""),
            new("Data", "string", 0, (o, _) => (o["data"] as JsonObject)?.Count ?? 0),
            AgeColumn,
        ],
        "configmaps" => [NameColumn, new("Data", "string", 0, (o, _) => ((o["data"] as JsonObject)?.Count ?? 0) + ((o["binaryData"] as JsonObject)?.Count ?? 0)), AgeColumn],
        "serviceaccounts" => [NameColumn, new("Secrets", "string", 0, (o, _) => (o["secrets"] as JsonArray)?.Count ?? 0), AgeColumn],
        "rolebindings" or "clusterrolebindings" =>
        [
            NameColumn,
            new("Role", "string", 0, (o, _) => $"{o.Str("roleRef", "kind")}/{o.Str("roleRef", "name")}"),
            AgeColumn,
            new("Users", "string", 1, (o, _) => Subjects(o, "User")),
            new("Groups", "string", 1, (o, _) => Subjects(o, "Group")),
            new("ServiceAccounts", "string", 1, (o, _) => Subjects(o, "ServiceAccount")),
        ],
        "roles" or "clusterroles" => [NameColumn, new("Created At", "date", 0, (o, _) => o.Str("metadata", "creationTimestamp"))],
        _ => [NameColumn, AgeColumn],
    };

    private static string PodStatus(JsonObject pod)
    {
        if (pod.IsTerminating()) return "Terminating";
        var waiting = ContainerStatuses(pod).Select(c => c.Str("state", "waiting", "reason")).FirstOrDefault(r => r is not null);
        return waiting ?? pod.Str("status", "reason") ?? pod.Str("status", "phase") ?? "Unknown";
    }

    private static IEnumerable<JsonObject> ContainerStatuses(JsonObject pod) => pod.At("status", "containerStatuses").Objects();

    private static string Containers(JsonObject o, string field) =>
        string.Join(",", o.At("spec", "template", "spec", "containers").Objects().Select(c => c.Str(field)));

    private static string Subjects(JsonObject o, string kind)
    {
        var names = o["subjects"].Objects().Where(s => s.Str("kind") == kind)
            .Select(s => kind == "ServiceAccount" ? $"{s.Str("namespace")}/{s.Str("name")}" : s.Str("name")).ToList();
        return names.Count == 0 ? "" : string.Join(", ", names);
    }

    private static string AccessModes(JsonNode? modes) => string.Join(",", (modes as JsonArray ?? []).Select(m => m?.GetValue<string>() switch
    {
        "ReadWriteOnce" => "RWO",
        "ReadOnlyMany" => "ROX",
        "ReadWriteMany" => "RWX",
        "ReadWriteOncePod" => "RWOP",
        var other => other,
    }));

    private static string Age(JsonObject o, DateTimeOffset now) =>
        JsonExtensions.ParseTimestamp(o.Str("metadata", "creationTimestamp")) is { } created ? HumanDuration(now - created) : "<unknown>";

    /// <summary>A port of apimachinery's duration.HumanDuration, so ages read like the real server's.</summary>
    internal static string HumanDuration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < -1) return "<invalid>";
        if (seconds < 0) return "0s";
        if (seconds < 120) return $"{seconds}s";
        var minutes = (long)d.TotalMinutes;
        if (minutes < 10) return seconds % 60 == 0 ? $"{minutes}m" : $"{minutes}m{seconds % 60}s";
        if (minutes < 180) return $"{minutes}m";
        var hours = (long)d.TotalHours;
        if (hours < 8) return minutes % 60 == 0 ? $"{hours}h" : $"{hours}h{minutes % 60}m";
        if (hours < 48) return $"{hours}h";
        if (hours < 24 * 8) return hours % 24 == 0 ? $"{hours / 24}d" : $"{hours / 24}d{hours % 24}h";
        if (hours < 24 * 365 * 2) return $"{hours / 24}d";
        if (hours < 24 * 365 * 8) return (hours / 24) % 365 == 0 ? $"{hours / 24 / 365}y" : $"{hours / 24 / 365}y{(hours / 24) % 365}d";
        return $"{hours / 24 / 365}y";
    }
}
