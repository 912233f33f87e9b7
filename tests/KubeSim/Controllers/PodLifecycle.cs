using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using KubeSim.Store;

namespace KubeSim.Controllers;

/// <summary>
/// The scheduler and kubelet, simulated: a new pod is bound to the one node at once, turns Running and
/// Ready <see cref="KubeSimOptions.ReadyAfter"/> after it was first seen, and a pod being deleted is
/// removed <see cref="KubeSimOptions.DeletionGrace"/> after its deletion was first seen. Also binds
/// PVCs, releases their protection finalizer once no pod uses them, and tears namespaces down.
/// </summary>
internal sealed partial class ControllerHost
{
    public const string NodeName = "kubesim-node";

    private readonly ConcurrentDictionary<string, DateTimeOffset> _firstSeen = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _deletionSeen = new();
    private int _nextIp;

    private void Forget(string uid)
    {
        _firstSeen.TryRemove(uid, out _);
        _deletionSeen.TryRemove(uid, out _);
    }

    private void ReconcilePod(ObjectKey key)
    {
        var pod = _store.GetCore(ResourceTypes.Pods, key.Namespace, key.Name);
        if (pod is null) return;
        var uid = pod.Uid();
        var now = _time.GetUtcNow();
        if (pod.IsTerminating())
        {
            var due = _deletionSeen.GetOrAdd(uid, now) + _options.DeletionGrace;
            if (now < due)
            {
                Schedule(key, due - now);
            }
            else if (pod.At("metadata", "finalizers") is JsonArray { Count: > 0 })
            {
                _store.Mutate(ResourceTypes.Pods, key.Namespace, key.Name, p => p.Meta()["deletionGracePeriodSeconds"] = 0);
            }
            else
            {
                _store.ForceRemove(ResourceTypes.Pods, key.Namespace, key.Name, uid);
            }
            return;
        }
        if (string.IsNullOrEmpty(pod.Str("spec", "nodeName")))
        {
            var n = Interlocked.Increment(ref _nextIp);
            var ip = $"10.244.{n / 250 % 250}.{(n % 250) + 2}";
            _store.Mutate(ResourceTypes.Pods, key.Namespace, key.Name, p => Bind(p, ip, now));
        }
        if (IsReady(pod) || pod.Str("status", "phase") is "Succeeded" or "Failed") return;
        var readyAt = _firstSeen.GetOrAdd(uid, now) + _options.ReadyAfter;
        if (now < readyAt)
        {
            Schedule(key, readyAt - now);
            return;
        }
        _store.Mutate(ResourceTypes.Pods, key.Namespace, key.Name, p => MarkRunning(p, now));
    }

    private static void Bind(JsonObject pod, string ip, DateTimeOffset now)
    {
        pod.Obj("spec")["nodeName"] = NodeName;
        var status = pod.Obj("status");
        status["hostIP"] = "10.0.0.2";
        status["podIP"] = ip;
        status["podIPs"] = new JsonArray(new JsonObject { ["ip"] = ip });
        status["startTime"] = JsonExtensions.Timestamp(now);
        status["conditions"] = new JsonArray(Condition("PodScheduled", "True", now));
        status["containerStatuses"] = new JsonArray(pod.At("spec", "containers").Objects().Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Str("name"),
            ["image"] = c.Str("image"),
            ["imageID"] = "",
            ["ready"] = false,
            ["restartCount"] = 0,
            ["started"] = false,
            ["state"] = new JsonObject { ["waiting"] = new JsonObject { ["reason"] = "ContainerCreating" } },
        }).ToArray());
    }

    private static void MarkRunning(JsonObject pod, DateTimeOffset now)
    {
        var status = pod.Obj("status");
        var started = JsonExtensions.Timestamp(now);
        status["phase"] = "Running";
        status["conditions"] = new JsonArray(
            Condition("PodReadyToStartContainers", "True", now),
            Condition("Initialized", "True", now),
            Condition("Ready", "True", now),
            Condition("ContainersReady", "True", now),
            Condition("PodScheduled", "True", now));
        status["containerStatuses"] = new JsonArray(pod.At("spec", "containers").Objects().Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Str("name"),
            ["image"] = c.Str("image"),
            ["imageID"] = $"{c.Str("image")}@sha256:{Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(c.Str("image") ?? "")))}",
            ["containerID"] = $"containerd://{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))}",
            ["ready"] = true,
            ["restartCount"] = 0,
            ["started"] = true,
            ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = started } },
        }).ToArray());
    }

    private static JsonObject Condition(string type, string status, DateTimeOffset now) => new()
    {
        ["type"] = type,
        ["status"] = status,
        ["lastProbeTime"] = null,
        ["lastTransitionTime"] = JsonExtensions.Timestamp(now),
    };

    internal static bool IsReady(JsonObject pod) =>
        pod.At("status", "conditions").Objects().Any(c => c.Str("type") == "Ready" && c.Str("status") == "True");

    private static bool IsActive(JsonObject pod) => !pod.IsTerminating() && pod.Str("status", "phase") is not ("Succeeded" or "Failed");

    private static IEnumerable<string> ClaimNames(JsonObject pod) =>
        pod.At("spec", "volumes").Objects().Select(v => v.Str("persistentVolumeClaim", "claimName")).OfType<string>();

    /// <summary>Binds a pending claim (a volume named after its uid, as dynamic provisioning does) and releases a deleted one once unused.</summary>
    private void ReconcileClaim(ObjectKey key)
    {
        var pvc = _store.GetCore(ResourceTypes.Pvcs, key.Namespace, key.Name);
        if (pvc is null) return;
        if (pvc.IsTerminating())
        {
            var inUse = _store.ListCore(ResourceTypes.Pods, key.Namespace, LabelSelector.Everything, FieldSelector.Everything).Items
                .Any(p => ClaimNames(p).Contains(key.Name));
            if (!inUse)
            {
                _store.Mutate(ResourceTypes.Pvcs, key.Namespace, key.Name, c =>
                {
                    if (c.At("metadata", "finalizers") is not JsonArray f) return;
                    foreach (var item in f.Where(x => x?.GetValue<string>() == Strategies.PvcProtection).ToList()) f.Remove(item);
                });
            }
            return;
        }
        if (pvc.Str("status", "phase") != "Pending") return;
        _store.Mutate(ResourceTypes.Pvcs, key.Namespace, key.Name, c =>
        {
            c.Obj("spec")["volumeName"] = "pvc-" + c.Uid();
            var annotations = c.Meta().Obj("annotations");
            annotations["pv.kubernetes.io/bind-completed"] = "yes";
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes";
            c["status"] = new JsonObject
            {
                ["phase"] = "Bound",
                ["accessModes"] = c.At("spec", "accessModes")?.DeepClone(),
                ["capacity"] = new JsonObject { ["storage"] = c.At("spec", "resources", "requests", "storage")?.DeepClone() },
            };
        });
    }

    /// <summary>The token controller: a service-account-token secret gets token, ca.crt and namespace filled in.</summary>
    private void ReconcileTokenSecret(ObjectKey key)
    {
        var secret = _store.GetCore(ResourceTypes.Secrets, key.Namespace, key.Name);
        if (secret is null || secret.Str("type") != ServiceAccountTokens.SecretType || secret.Str("data", "token") is not null) return;
        var account = secret.Str("metadata", "annotations", "kubernetes.io/service-account.name");
        if (account is null || _store.GetCore(ResourceTypes.ServiceAccounts, key.Namespace, account) is null) return;
        static string B64(string s) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(s));
        _store.Mutate(ResourceTypes.Secrets, key.Namespace, key.Name, s =>
        {
            var data = s.Obj("data");
            data["token"] = B64(ServiceAccountTokens.NewToken(key.Namespace, account));
            data["ca.crt"] = B64(_caPem);
            data["namespace"] = B64(key.Namespace);
        });
    }

    /// <summary>New namespaces get their "default" service account; a terminating one is emptied, then removed.</summary>
    private void ReconcileNamespace(ObjectKey key)
    {
        var ns = _store.GetCore(ResourceTypes.Namespaces, "", key.Name);
        if (ns is null) return;
        if (!ns.IsTerminating())
        {
            if (_store.GetCore(ResourceTypes.ServiceAccounts, key.Name, "default") is null)
            {
                try
                {
                    _store.CreateCore(ResourceTypes.ServiceAccounts, key.Name, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "default" } }, dryRun: false);
                }
                catch (KubeApiException e) when (e.Code == 409)
                {
                }
            }
            return;
        }
        var remaining = 0;
        foreach (var type in ResourceTypes.All.Where(t => t.Namespaced))
        {
            foreach (var o in _store.ListCore(type, key.Name, LabelSelector.Everything, FieldSelector.Everything).Items)
            {
                _store.ForceRemove(type, key.Name, o.Name(), o.Uid());
                remaining++;
            }
        }
        if (remaining == 0) _store.ForceRemove(ResourceTypes.Namespaces, null, key.Name, ns.Uid());
    }
}
