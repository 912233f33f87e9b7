using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Controllers;

/// <summary>
/// Deployment and statefulset controllers, reduced to what clients observe. Deployments own their pods
/// directly (no ReplicaSet objects), named <c>{name}-{template hash}-{suffix}</c>; a template change rolls
/// out by adding new pods and removing old ones as new ones turn Ready. Statefulsets create
/// <c>{name}-{ordinal}</c> in order (OrderedReady) or all at once (Parallel), create the claims of their
/// volumeClaimTemplates before each pod and never delete them, scale down from the highest ordinal, and
/// roll template changes out from the highest ordinal down.
/// </summary>
internal sealed partial class ControllerHost
{
    private void ReconcileDeployment(ObjectKey key)
    {
        var d = _store.GetCore(ResourceTypes.Deployments, key.Namespace, key.Name);
        if (d is null || d.IsTerminating() || d.Bool("spec", "paused") == true) return;
        var desired = d.Long("spec", "replicas") ?? 1;
        var hash = TemplateHash(d.At("spec", "template"));
        var active = OwnedPods(d).Where(IsActive).ToList();
        var current = active.Where(p => p.Labels().GetValueOrDefault("pod-template-hash") == hash).ToList();
        var old = active.Except(current).ToList();

        if (d.Str("spec", "strategy", "type") == "Recreate" && old.Count > 0)
        {
            DeletePods(old);
        }
        else if (d.Str("spec", "strategy", "type") == "Recreate" && OwnedPods(d).Any(p => p.IsTerminating()))
        {
            // Recreate: new pods only once every old one is gone.
        }
        else
        {
            for (var i = current.Count; i < desired; i++)
            {
                CreatePod(d, new JsonObject { ["generateName"] = $"{d.Name()}-{hash}-" }, new() { ["pod-template-hash"] = hash });
            }
            DeletePods(NotReadyFirst(current).Take(Math.Max(0, current.Count - (int)desired)));
            var keepOld = Math.Max(0, (int)desired - current.Count(IsReady));
            DeletePods(NotReadyFirst(old).Take(Math.Max(0, old.Count - keepOld)));
        }

        var pods = OwnedPods(d).Where(IsActive).ToList();
        var updated = pods.Count(p => p.Labels().GetValueOrDefault("pod-template-hash") == hash);
        var ready = pods.Count(IsReady);
        var maxUnavailable = Resolve(d.At("spec", "strategy", "rollingUpdate", "maxUnavailable"), desired, roundUp: false);
        var complete = updated == desired && pods.Count == desired && ready == desired;
        _store.Mutate(ResourceTypes.Deployments, key.Namespace, key.Name, obj =>
        {
            var before = obj["status"] as JsonObject ?? [];
            var now = _time.GetUtcNow();
            var status = new JsonObject { ["observedGeneration"] = obj.Long("metadata", "generation") ?? 1 };
            if (pods.Count > 0) status["replicas"] = pods.Count;
            if (updated > 0) status["updatedReplicas"] = updated;
            if (ready > 0)
            {
                status["readyReplicas"] = ready;
                status["availableReplicas"] = ready;
            }
            if (desired - ready > 0) status["unavailableReplicas"] = desired - ready;
            var available = ready >= desired - maxUnavailable;
            status["conditions"] = new JsonArray(
                KeepTimes(before, "Available", available ? "True" : "False",
                    available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                    available ? "Deployment has minimum availability." : "Deployment does not have minimum availability.", now),
                KeepTimes(before, "Progressing", "True",
                    complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
                    complete ? $"ReplicaSet \"{obj.Name()}-{hash}\" has successfully progressed." : $"ReplicaSet \"{obj.Name()}-{hash}\" is progressing.", now));
            obj["status"] = status;
        });
    }

    private void ReconcileStatefulSet(ObjectKey key)
    {
        var sts = _store.GetCore(ResourceTypes.StatefulSets, key.Namespace, key.Name);
        if (sts is null || sts.IsTerminating()) return;
        var name = sts.Name();
        var desired = (int)(sts.Long("spec", "replicas") ?? 1);
        var revision = $"{name}-{TemplateHash(sts.At("spec", "template"))}";
        var parallel = sts.Str("spec", "podManagementPolicy") == "Parallel";
        var pods = OwnedPods(sts).Where(p => Ordinal(p, name) >= 0).ToDictionary(p => Ordinal(p, name));

        var settled = true;
        for (var i = 0; i < desired; i++)
        {
            if (!pods.TryGetValue(i, out var pod))
            {
                settled = false;
                if (EnsureClaims(sts, i)) CreatePod(sts, new JsonObject { ["name"] = $"{name}-{i}" }, StatefulLabels(name, i, revision), i);
                if (!parallel) break;
            }
            else if (pod.IsTerminating() || !IsReady(pod))
            {
                settled = false;
                if (!parallel) break;
            }
        }
        var condemned = pods.Where(kv => kv.Key >= desired).OrderByDescending(kv => kv.Key).Select(kv => kv.Value).ToList();
        if (parallel)
        {
            DeletePods(condemned.Where(p => !p.IsTerminating()));
        }
        else if (settled && condemned.Count > 0 && !condemned.Any(p => p.IsTerminating()))
        {
            DeletePods(condemned.Take(1));
        }
        var partition = sts.Long("spec", "updateStrategy", "rollingUpdate", "partition") ?? 0;
        if (settled && condemned.Count == 0 && sts.Str("spec", "updateStrategy", "type") != "OnDelete")
        {
            var stale = pods.Where(kv => kv.Key < desired && kv.Key >= partition && Revision(kv.Value) != revision)
                .OrderByDescending(kv => kv.Key).Select(kv => kv.Value).Take(1);
            DeletePods(stale);
        }

        var live = OwnedPods(sts).Where(p => Ordinal(p, name) >= 0 && IsActive(p)).ToList();
        var ready = live.Count(IsReady);
        var updatedCount = live.Count(p => Revision(p) == revision);
        _store.Mutate(ResourceTypes.StatefulSets, key.Namespace, key.Name, obj =>
        {
            var currentRevision = obj.Str("status", "currentRevision") is { Length: > 0 } cr ? cr : revision;
            if (updatedCount == desired && ready == desired && live.Count == desired) currentRevision = revision;
            var status = new JsonObject
            {
                ["observedGeneration"] = obj.Long("metadata", "generation") ?? 1,
                ["replicas"] = live.Count,
                ["readyReplicas"] = ready,
                ["currentReplicas"] = live.Count(p => Revision(p) == currentRevision),
                ["updatedReplicas"] = updatedCount,
                ["currentRevision"] = currentRevision,
                ["updateRevision"] = revision,
                ["collisionCount"] = 0,
                ["availableReplicas"] = ready,
            };
            if (ready == 0) status.Remove("readyReplicas");
            obj["status"] = status;
        });
    }

    /// <summary>Creates the claims pod <paramref name="ordinal"/> needs; false while one of them is still being deleted.</summary>
    private bool EnsureClaims(JsonObject sts, int ordinal)
    {
        foreach (var template in sts.At("spec", "volumeClaimTemplates").Objects())
        {
            var claim = $"{template.Str("metadata", "name")}-{sts.Name()}-{ordinal}";
            var existing = _store.GetCore(ResourceTypes.Pvcs, sts.Namespace(), claim);
            if (existing is not null)
            {
                if (existing.IsTerminating()) return false;
                continue;
            }
            var labels = JsonExtensions.StringMap(template.At("metadata", "labels"));
            foreach (var (k, v) in JsonExtensions.StringMap(sts.At("spec", "selector", "matchLabels"))) labels[k] = v;
            var pvc = new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "PersistentVolumeClaim",
                ["metadata"] = new JsonObject
                {
                    ["name"] = claim,
                    ["labels"] = new JsonObject(labels.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                },
                ["spec"] = template["spec"]?.DeepClone(),
            };
            _store.CreateCore(ResourceTypes.Pvcs, sts.Namespace(), pvc, dryRun: false);
        }
        return true;
    }

    private static Dictionary<string, string> StatefulLabels(string name, int ordinal, string revision) => new()
    {
        ["controller-revision-hash"] = revision,
        ["statefulset.kubernetes.io/pod-name"] = $"{name}-{ordinal}",
        ["apps.kubernetes.io/pod-index"] = ordinal.ToString(CultureInfo.InvariantCulture),
    };

    private void CreatePod(JsonObject owner, JsonObject metadata, Dictionary<string, string> extraLabels, int? ordinal = null)
    {
        var template = owner.At("spec", "template") as JsonObject ?? [];
        var labels = JsonExtensions.StringMap(template.At("metadata", "labels"));
        foreach (var (k, v) in extraLabels) labels[k] = v;
        metadata["labels"] = new JsonObject(labels.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        if (template.At("metadata", "annotations") is JsonObject annotations) metadata["annotations"] = annotations.DeepClone();
        metadata["ownerReferences"] = new JsonArray(new JsonObject
        {
            ["apiVersion"] = owner.Str("apiVersion"),
            ["kind"] = owner.Str("kind"),
            ["name"] = owner.Name(),
            ["uid"] = owner.Uid(),
            ["controller"] = true,
            ["blockOwnerDeletion"] = true,
        });
        var spec = template["spec"]?.DeepClone() as JsonObject ?? [];
        if (ordinal is { } i)
        {
            spec["hostname"] = metadata.Str("name");
            if (owner.Str("spec", "serviceName") is { Length: > 0 } service) spec["subdomain"] = service;
            var volumes = spec.Arr("volumes");
            foreach (var t in owner.At("spec", "volumeClaimTemplates").Objects())
            {
                var volumeName = t.Str("metadata", "name");
                foreach (var clash in volumes.Objects().Where(v => v.Str("name") == volumeName).ToList()) volumes.Remove(clash);
                volumes.Add(new JsonObject
                {
                    ["name"] = volumeName,
                    ["persistentVolumeClaim"] = new JsonObject { ["claimName"] = $"{volumeName}-{owner.Name()}-{i}" },
                });
            }
            if (volumes.Count == 0) spec.Remove("volumes");
        }
        var pod = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Pod", ["metadata"] = metadata, ["spec"] = spec };
        try
        {
            _store.CreateCore(ResourceTypes.Pods, owner.Namespace(), pod, dryRun: false);
        }
        catch (KubeApiException e) when (e.Code == 409)
        {
            // A pod of that name is still terminating; the DELETED event brings us back.
        }
    }

    private void DeletePods(IEnumerable<JsonObject> pods)
    {
        foreach (var p in pods.ToList())
        {
            try
            {
                _store.DeleteCore(ResourceTypes.Pods, p.Namespace(), p.Name(), new DeleteOptions(), dryRun: false);
            }
            catch (KubeApiException e) when (e.Code == 404)
            {
            }
        }
    }

    private static IEnumerable<JsonObject> NotReadyFirst(IEnumerable<JsonObject> pods) =>
        pods.OrderBy(p => IsReady(p)).ThenByDescending(p => p.Str("metadata", "creationTimestamp"), StringComparer.Ordinal);

    private static int Ordinal(JsonObject pod, string setName)
    {
        var name = pod.Name();
        return name.StartsWith(setName + "-", StringComparison.Ordinal) && int.TryParse(name[(setName.Length + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : -1;
    }

    private static string? Revision(JsonObject pod) => pod.Labels().GetValueOrDefault("controller-revision-hash");

    /// <summary>A condition, keeping its timestamps when neither status nor reason changed (so a resync writes nothing).</summary>
    private static JsonObject KeepTimes(JsonObject before, string type, string status, string reason, string message, DateTimeOffset now)
    {
        var previous = before["conditions"].Objects().FirstOrDefault(c => c.Str("type") == type);
        var stamp = JsonExtensions.Timestamp(now);
        var sameStatus = previous?.Str("status") == status;
        var same = sameStatus && previous?.Str("reason") == reason;
        return new JsonObject
        {
            ["type"] = type,
            ["status"] = status,
            ["lastUpdateTime"] = same ? previous!.Str("lastUpdateTime") : stamp,
            ["lastTransitionTime"] = sameStatus ? previous!.Str("lastTransitionTime") : stamp,
            ["reason"] = reason,
            ["message"] = message,
        };
    }

    private static long Resolve(JsonNode? intOrPercent, long total, bool roundUp)
    {
        if (intOrPercent is JsonValue v && v.TryGetValue<string>(out var s) && s.EndsWith('%')
            && double.TryParse(s[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var pct))
        {
            var value = total * pct / 100;
            return (long)(roundUp ? Math.Ceiling(value) : Math.Floor(value));
        }
        return intOrPercent.Long() ?? 0;
    }

    /// <summary>
    /// The pod-template-hash: FNV-1a of the template, its decimal digits mapped onto the safe alphabet,
    /// like the deployment controller's (so it is stable for one template and changes with it).
    /// </summary>
    internal static string TemplateHash(JsonNode? template)
    {
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(template?.ToJsonString() ?? ""))
        {
            hash = (hash ^ b) * 16777619u;
        }
        var digits = hash.ToString(CultureInfo.InvariantCulture);
        return string.Concat(digits.Select(c => KubeStore.SafeAlphabet[c - '0']));
    }
}
