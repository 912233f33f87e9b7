using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KubeSim.Store;

/// <summary>
/// Per-resource defaulting and validation, the part of the apiserver's "strategies" that Opsgate
/// and kubectl can observe: defaults they read back, and Invalid (422) errors for bad input.
/// </summary>
internal static partial class Strategies
{
    /// <summary>Defaults, applied on every write (the apiserver defaults while decoding), so a PUT without them keeps them.</summary>
    public static void Default(ResourceType type, JsonObject obj)
    {
        JsonObject spec;
        switch (type.Plural)
        {
            case "namespaces":
                obj.Meta().Obj("labels")["kubernetes.io/metadata.name"] = obj.Name();
                break;
            case "pods":
                DefaultPodSpec(obj.Obj("spec"));
                break;
            case "deployments":
                spec = obj.Obj("spec");
                spec["replicas"] ??= 1;
                spec["strategy"] ??= new JsonObject { ["type"] = "RollingUpdate" };
                if (spec.Str("strategy", "type") == "RollingUpdate")
                {
                    spec.Obj("strategy")["rollingUpdate"] ??= new JsonObject { ["maxUnavailable"] = "25%", ["maxSurge"] = "25%" };
                }
                spec["revisionHistoryLimit"] ??= 10;
                spec["progressDeadlineSeconds"] ??= 600;
                DefaultPodSpec((spec["template"] as JsonObject)?.Obj("spec"));
                break;
            case "statefulsets":
                spec = obj.Obj("spec");
                spec["replicas"] ??= 1;
                spec["podManagementPolicy"] ??= "OrderedReady";
                spec["updateStrategy"] ??= new JsonObject { ["type"] = "RollingUpdate" };
                if (spec.Str("updateStrategy", "type") == "RollingUpdate")
                {
                    spec.Obj("updateStrategy")["rollingUpdate"] ??= new JsonObject { ["partition"] = 0 };
                }
                spec["revisionHistoryLimit"] ??= 10;
                spec["persistentVolumeClaimRetentionPolicy"] ??= new JsonObject { ["whenDeleted"] = "Retain", ["whenScaled"] = "Retain" };
                foreach (var t in spec["volumeClaimTemplates"].Objects())
                {
                    t["apiVersion"] ??= "v1";
                    t["kind"] ??= "PersistentVolumeClaim";
                    t.Obj("spec")["volumeMode"] ??= "Filesystem";
                }
                DefaultPodSpec((spec["template"] as JsonObject)?.Obj("spec"));
                break;
            case "persistentvolumeclaims":
                spec = obj.Obj("spec");
                spec["volumeMode"] ??= "Filesystem";
                spec["storageClassName"] ??= "standard";
                break;
            case "secrets":
                obj["type"] ??= "Opaque";
                NormalizeSecret(obj);
                break;
        }
    }

    /// <summary>Defaults plus what only a create sets: initial status, system finalizers.</summary>
    public static void PrepareForCreate(ResourceType type, JsonObject obj)
    {
        Default(type, obj);
        switch (type.Plural)
        {
            case "namespaces":
                obj.Obj("spec")["finalizers"] ??= new JsonArray("kubernetes");
                obj["status"] = new JsonObject { ["phase"] = "Active" };
                break;
            case "pods":
                obj["status"] = new JsonObject { ["phase"] = "Pending", ["qosClass"] = "BestEffort" };
                break;
            case "deployments":
                obj["status"] = new JsonObject();
                break;
            case "statefulsets":
                obj["status"] = new JsonObject { ["replicas"] = 0, ["availableReplicas"] = 0 };
                break;
            case "persistentvolumeclaims":
                var finalizers = obj.Meta().Arr("finalizers");
                if (!finalizers.Any(f => f?.GetValue<string>() == PvcProtection)) finalizers.Add(PvcProtection);
                obj["status"] = new JsonObject { ["phase"] = "Pending" };
                break;
        }
    }

    public const string PvcProtection = "kubernetes.io/pvc-protection";

    /// <summary>Defaults, and carries over what an update may not change.</summary>
    public static void PrepareForUpdate(ResourceType type, JsonObject updated, JsonObject old)
    {
        Default(type, updated);
        if (type.HasStatus) updated["status"] = old["status"]?.DeepClone();
        if (type.Plural == "namespaces") updated["spec"] = old["spec"]?.DeepClone();
    }

    public static void Validate(ResourceType type, JsonObject obj)
    {
        var errors = new List<(string, string)>();
        var name = obj.Name();
        if (type.Plural == "namespaces" ? !IsDnsLabel(name) : type.Group == ResourceTypes.Rbac ? name.Contains('/', StringComparison.Ordinal) : !IsDnsSubdomain(name))
        {
            errors.Add(("metadata.name", $"Invalid value: \"{name}\": a lowercase RFC 1123 {(type.Plural == "namespaces" ? "label" : "subdomain")} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
        }
        switch (type.Plural)
        {
            case "pods":
                ValidatePodSpec(obj["spec"] as JsonObject, "spec", errors);
                break;
            case "deployments" or "statefulsets":
                ValidateWorkload(obj, errors);
                break;
            case "persistentvolumeclaims":
                if (obj.At("spec", "accessModes") is not JsonArray { Count: > 0 })
                    errors.Add(("spec.accessModes", "Required value: at least 1 access mode is required"));
                if (obj.Str("spec", "resources", "requests", "storage") is null && obj.Long("spec", "resources", "requests", "storage") is null)
                    errors.Add(("spec.resources[storage]", "Required value"));
                break;
            case "rolebindings" or "clusterrolebindings":
                if (obj.Str("roleRef", "name") is null) errors.Add(("roleRef.name", "Required value"));
                break;
        }
        if (errors.Count > 0) throw KubeApiException.Invalid(type, name, errors);
    }

    public static void ValidateUpdate(ResourceType type, JsonObject updated, JsonObject old)
    {
        var errors = new List<(string, string)>();
        switch (type.Plural)
        {
            case "deployments" when !JsonNode.DeepEquals(updated.At("spec", "selector"), old.At("spec", "selector")):
                errors.Add(("spec.selector", $"Invalid value: {updated.At("spec", "selector")?.ToJsonString()}: field is immutable"));
                break;
            case "statefulsets":
                var a = (JsonObject?)updated["spec"]?.DeepClone() ?? [];
                var b = (JsonObject?)old["spec"]?.DeepClone() ?? [];
                foreach (var mutable in new[] { "replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds" })
                {
                    a.Remove(mutable);
                    b.Remove(mutable);
                }
                if (!JsonNode.DeepEquals(a, b))
                {
                    errors.Add(("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
                }
                break;
        }
        if (errors.Count > 0) throw KubeApiException.Invalid(type, updated.Name(), errors);
        Validate(type, updated);
    }

    private static void ValidateWorkload(JsonObject obj, List<(string, string)> errors)
    {
        var selector = obj.At("spec", "selector");
        if (selector is not JsonObject s || (s["matchLabels"] is not JsonObject { Count: > 0 } && s["matchExpressions"] is not JsonArray { Count: > 0 }))
        {
            errors.Add(("spec.selector", "Required value"));
        }
        else if (!LabelSelector.FromObject(selector).Matches(JsonExtensions.StringMap(obj.At("spec", "template", "metadata", "labels"))))
        {
            errors.Add(("spec.template.metadata.labels", $"Invalid value: {obj.At("spec", "template", "metadata", "labels")?.ToJsonString() ?? "null"}: `selector` does not match template `labels`"));
        }
        if (obj.Long("spec", "replicas") is < 0) errors.Add(("spec.replicas", "Invalid value: must be greater than or equal to 0"));
        ValidatePodSpec(obj.At("spec", "template", "spec") as JsonObject, "spec.template.spec", errors);
    }

    private static void ValidatePodSpec(JsonObject? spec, string path, List<(string, string)> errors)
    {
        if (spec?["containers"] is not JsonArray { Count: > 0 } containers)
        {
            errors.Add(($"{path}.containers", "Required value"));
            return;
        }
        var i = 0;
        foreach (var c in containers.Objects())
        {
            if (c.Str("name") is not { } n || !IsDnsLabel(n)) errors.Add(($"{path}.containers[{i}].name", "Required value"));
            if (string.IsNullOrEmpty(c.Str("image"))) errors.Add(($"{path}.containers[{i}].image", "Required value"));
            i++;
        }
    }

    private static void DefaultPodSpec(JsonObject? spec)
    {
        if (spec is null) return;
        spec["restartPolicy"] ??= "Always";
        spec["terminationGracePeriodSeconds"] ??= 30;
        spec["dnsPolicy"] ??= "ClusterFirst";
        spec["schedulerName"] ??= "default-scheduler";
        spec["securityContext"] ??= new JsonObject();
        foreach (var c in spec["containers"].Objects())
        {
            var image = c.Str("image") ?? "";
            c["imagePullPolicy"] ??= image.EndsWith(":latest", StringComparison.Ordinal) || !image.Contains(':', StringComparison.Ordinal) ? "Always" : "IfNotPresent";
            c["terminationMessagePath"] ??= "/dev/termination-log";
            c["terminationMessagePolicy"] ??= "File";
            c["resources"] ??= new JsonObject();
        }
    }

    /// <summary>stringData folds into data (base64), as the apiserver does; bad base64 is a 400 like a decode error.</summary>
    private static void NormalizeSecret(JsonObject secret)
    {
        if (secret["stringData"] is JsonObject stringData)
        {
            var data = secret.Obj("data");
            foreach (var (k, v) in stringData)
            {
                data[k] = Convert.ToBase64String(Encoding.UTF8.GetBytes(v?.GetValue<string>() ?? ""));
            }
            secret.Remove("stringData");
        }
        foreach (var (k, v) in secret["data"] as JsonObject ?? [])
        {
            var s = v?.GetValue<string>() ?? "";
            var buffer = new byte[s.Length];
            if (!Convert.TryFromBase64String(s, buffer, out _))
            {
                throw KubeApiException.BadRequest($"Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 (key {k})");
            }
        }
    }

    public static bool IsDnsSubdomain(string s) => s.Length is > 0 and <= 253 && SubdomainPattern().IsMatch(s);

    public static bool IsDnsLabel(string s) => s.Length is > 0 and <= 63 && LabelPattern().IsMatch(s);

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex SubdomainPattern();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex LabelPattern();
}
