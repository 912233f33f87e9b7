using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Patching;

/// <summary>
/// Strategic merge patch for the fields Opsgate and kubectl apply touch: lists of containers, env,
/// ports, volumes, mounts, conditions and the like merge by their key; finalizers merge as a set;
/// other lists replace. Honours the directives kubectl emits: <c>$patch</c> (replace/delete),
/// <c>$setElementOrder/</c>, <c>$deleteFromPrimitiveList/</c> and <c>$retainKeys</c>.
/// </summary>
internal static class StrategicMergePatch
{
    private const string SetOrder = "$setElementOrder/";
    private const string DeleteFromPrimitive = "$deleteFromPrimitiveList/";

    /// <summary>Merge keys by field name (the Go struct tags' patchMergeKey for the types served here).</summary>
    private static readonly Dictionary<string, string> MergeKeys = new(StringComparer.Ordinal)
    {
        ["containers"] = "name",
        ["initContainers"] = "name",
        ["ephemeralContainers"] = "name",
        ["env"] = "name",
        ["ports"] = "containerPort",
        ["volumeMounts"] = "mountPath",
        ["volumeDevices"] = "devicePath",
        ["volumes"] = "name",
        ["imagePullSecrets"] = "name",
        ["conditions"] = "type",
        ["ownerReferences"] = "uid",
        ["hostAliases"] = "ip",
        ["topologySpreadConstraints"] = "topologyKey",
        ["resourceClaims"] = "name",
        ["secrets"] = "name",
    };

    private static readonly HashSet<string> PrimitiveSets = new(StringComparer.Ordinal) { "finalizers" };

    public static JsonObject Apply(JsonObject target, JsonObject patch) => MergeMap(target, patch) ?? [];

    private static JsonObject? MergeMap(JsonObject? original, JsonObject patch)
    {
        switch (patch.Str("$patch"))
        {
            case "replace": return MergeMap(null, WithoutDirective(patch));
            case "delete": return null;
        }
        var result = original is null ? [] : (JsonObject)original.DeepClone();
        foreach (var (k, v) in patch)
        {
            if (k.StartsWith('$')) continue;
            if (v is null)
            {
                result.Remove(k);
            }
            else if (v is JsonObject vo)
            {
                var merged = MergeMap(result[k] as JsonObject, vo);
                if (merged is null) result.Remove(k);
                else result[k] = merged;
            }
            else if (v is JsonArray va && MergeKeys.TryGetValue(k, out var key) && va.All(e => e is JsonObject))
            {
                result[k] = MergeList(result[k] as JsonArray, va, key);
            }
            else if (v is JsonArray vp && PrimitiveSets.Contains(k))
            {
                var set = result[k] is JsonArray existing ? (JsonArray)existing.DeepClone() : [];
                foreach (var item in vp.Where(item => !set.Any(e => JsonNode.DeepEquals(e, item)))) set.Add(item?.DeepClone());
                result[k] = set;
            }
            else
            {
                result[k] = Clean(v);
            }
        }
        foreach (var (k, v) in patch)
        {
            if (k.StartsWith(DeleteFromPrimitive, StringComparison.Ordinal) && result[k[DeleteFromPrimitive.Length..]] is JsonArray list && v is JsonArray remove)
            {
                foreach (var item in list.Where(item => remove.Any(r => JsonNode.DeepEquals(r, item))).ToList()) list.Remove(item);
            }
        }
        foreach (var (k, v) in patch)
        {
            if (k.StartsWith(SetOrder, StringComparison.Ordinal) && v is JsonArray order)
            {
                var field = k[SetOrder.Length..];
                if (result[field] is JsonArray list) result[field] = Reorder(list, order, MergeKeys.GetValueOrDefault(field));
            }
        }
        if (patch["$retainKeys"] is JsonArray retain)
        {
            var keep = retain.Select(r => r?.GetValue<string>()).ToHashSet();
            foreach (var k in result.Select(kv => kv.Key).Where(k => !keep.Contains(k)).ToList()) result.Remove(k);
        }
        return result;
    }

    private static JsonArray MergeList(JsonArray? original, JsonArray patch, string key)
    {
        if (patch.OfType<JsonObject>().Any(e => e.Str("$patch") == "replace"))
        {
            return new JsonArray(patch.OfType<JsonObject>().Where(e => e.Str("$patch") is null).Select(e => (JsonNode?)MergeMap(null, e)).ToArray());
        }
        var result = original is null ? [] : (JsonArray)original.DeepClone();
        foreach (var element in patch.OfType<JsonObject>())
        {
            var keyValue = element[key];
            var index = result.ToList().FindIndex(e => e is JsonObject eo && JsonNode.DeepEquals(eo[key], keyValue));
            if (element.Str("$patch") == "delete")
            {
                if (index >= 0) result.RemoveAt(index);
                continue;
            }
            var merged = MergeMap(index >= 0 ? result[index] as JsonObject : null, element);
            if (index >= 0) result[index] = merged;
            else result.Add(merged);
        }
        return result;
    }

    /// <summary>Orders the list as the <c>$setElementOrder</c> list says; items it does not name keep their place after those it does.</summary>
    private static JsonArray Reorder(JsonArray list, JsonArray order, string? key)
    {
        int Rank(JsonNode? item)
        {
            var probe = key is not null && item is JsonObject o ? o[key] : item;
            for (var i = 0; i < order.Count; i++)
            {
                var want = key is not null && order[i] is JsonObject w ? w[key] : order[i];
                if (JsonNode.DeepEquals(want, probe)) return i;
            }
            return int.MaxValue;
        }
        return new JsonArray(list.Select(x => x?.DeepClone()).OrderBy(Rank).ToArray());
    }

    private static JsonObject WithoutDirective(JsonObject patch)
    {
        var copy = (JsonObject)patch.DeepClone();
        copy.Remove("$patch");
        return copy;
    }

    private static JsonNode? Clean(JsonNode? node) => node switch
    {
        JsonObject o => MergeMap(null, o),
        JsonArray a => new JsonArray(a.Select(Clean).ToArray()),
        _ => node?.DeepClone(),
    };
}
