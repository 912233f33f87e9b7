using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace KubeSim.Store;

public sealed partial class KubeStore
{
    /// <summary>The alphabet the apiserver uses for generateName suffixes (no vowels, no look-alikes).</summary>
    internal const string SafeAlphabet = "bcdfghjklmnpqrstvwxz2456789";

    internal JsonObject CreateCore(ResourceType type, string? urlNamespace, JsonObject input, bool dryRun)
    {
        var obj = Normalize(type, input, urlNamespace);
        var meta = obj.Meta();
        if (string.IsNullOrEmpty(meta.Str("name")))
        {
            if (meta.Str("generateName") is not { Length: > 0 } prefix)
            {
                throw KubeApiException.Invalid(type, "", [("metadata.name", "Required value: name or generateName is required")]);
            }
            meta["name"] = prefix + RandomSuffix(5);
        }
        foreach (var serverSet in new[] { "resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink" })
        {
            meta.Remove(serverSet);
        }
        Strategies.PrepareForCreate(type, obj);
        Strategies.Validate(type, obj);
        var name = obj.Name();
        lock (_gate)
        {
            if (type.Namespaced)
            {
                var ns = Find(ResourceTypes.Namespaces, null, obj.Namespace()) ?? throw KubeApiException.NotFound(ResourceTypes.Namespaces, obj.Namespace());
                if (ns.IsTerminating())
                {
                    throw KubeApiException.Forbidden(type, name, $"unable to create new content in namespace {obj.Namespace()} because it is being terminated");
                }
            }
            if (Find(type, obj.Namespace(), name) is not null) throw KubeApiException.AlreadyExists(type, name);
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = JsonExtensions.Timestamp(_time.GetUtcNow());
            if (type.TracksGeneration) meta["generation"] = 1;
            if (dryRun) return obj;
            meta["resourceVersion"] = Next();
            _objects[type][Key(type, obj.Namespace(), name)] = obj;
            Publish("ADDED", type, obj, null);
            return obj.CloneObject();
        }
    }

    internal JsonObject ReplaceCore(ResourceType type, string? ns, string name, JsonObject input, string? subresource, bool dryRun)
    {
        lock (_gate) return ReplaceLocked(type, ns, name, input, subresource, dryRun);
    }

    /// <summary>Read-modify-write under the lock: <paramref name="patch"/> gets a copy of the current object and returns the new one.</summary>
    internal JsonObject PatchCore(ResourceType type, string? ns, string name, string? subresource, Func<JsonObject, JsonObject> patch, bool dryRun)
    {
        lock (_gate)
        {
            var current = Find(type, ns, name) ?? throw KubeApiException.NotFound(type, name);
            var patched = patch(current.CloneObject());
            return ReplaceLocked(type, ns, name, patched, subresource, dryRun);
        }
    }

    private JsonObject ReplaceLocked(ResourceType type, string? ns, string name, JsonObject input, string? subresource, bool dryRun)
    {
        if (input.Name() is { Length: > 0 } bodyName && bodyName != name)
        {
            throw KubeApiException.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
        }
        var obj = Normalize(type, input, ns);
        obj.Meta()["name"] = name;
        var old = Find(type, ns, name) ?? throw KubeApiException.NotFound(type, name);
        var rv = obj.Str("metadata", "resourceVersion");
        if (!string.IsNullOrEmpty(rv) && rv != old.Str("metadata", "resourceVersion")) throw KubeApiException.Modified(type, name);

        JsonObject updated;
        if (subresource == "status")
        {
            updated = old.CloneObject();
            updated["status"] = obj["status"]?.DeepClone();
        }
        else
        {
            updated = obj;
            var meta = updated.Meta();
            foreach (var kept in new[] { "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation" })
            {
                if (old.At("metadata", kept) is { } value) meta[kept] = value.DeepClone();
                else meta.Remove(kept);
            }
            Strategies.PrepareForUpdate(type, updated, old);
            if (type.TracksGeneration && !JsonNode.DeepEquals(updated["spec"], old["spec"]))
            {
                meta["generation"] = (old.Long("metadata", "generation") ?? 0) + 1;
            }
            Strategies.ValidateUpdate(type, updated, old);
        }
        return CommitLocked(type, updated, old, dryRun);
    }

    internal JsonObject DeleteCore(ResourceType type, string? ns, string name, DeleteOptions options, bool dryRun)
    {
        lock (_gate)
        {
            var old = Find(type, ns, name) ?? throw KubeApiException.NotFound(type, name);
            if (options.PreconditionUid is { } uid && uid != old.Uid())
            {
                throw KubeApiException.Conflict(type, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {old.Uid()}");
            }
            if (options.PreconditionResourceVersion is { } prv && prv != old.Str("metadata", "resourceVersion"))
            {
                throw KubeApiException.Conflict(type, name, $"Precondition failed: ResourceVersion in precondition: {prv}, ResourceVersion in object meta: {old.Str("metadata", "resourceVersion")}");
            }
            if (dryRun) return old.CloneObject();
            if (options.PropagationPolicy == "Orphan") OrphanDependentsLocked(old.Uid());

            var hasFinalizers = old.At("metadata", "finalizers") is JsonArray { Count: > 0 };
            if (type == ResourceTypes.Pods)
            {
                var grace = options.GracePeriodSeconds ?? old.Long("spec", "terminationGracePeriodSeconds") ?? 30;
                var immediate = grace <= 0 || string.IsNullOrEmpty(old.Str("spec", "nodeName")) || old.Str("status", "phase") is "Succeeded" or "Failed";
                if (!immediate)
                {
                    return old.IsTerminating() ? old.CloneObject() : MarkDeleting(type, old, grace);
                }
                if (hasFinalizers) return MarkDeleting(type, old, 0);
                return RemoveLocked(type, old);
            }
            if (type == ResourceTypes.Namespaces)
            {
                if (old.IsTerminating()) return old.CloneObject();
                var terminating = old.CloneObject();
                Stamp(terminating, 0);
                terminating.Obj("status")["phase"] = "Terminating";
                return CommitLocked(type, terminating, old, false);
            }
            if (hasFinalizers) return old.IsTerminating() ? old.CloneObject() : MarkDeleting(type, old, 0);
            return RemoveLocked(type, old);
        }
    }

    /// <summary>Controller write: mutate a copy and store it without strategies. Returns null when the object is gone.</summary>
    internal JsonObject? Mutate(ResourceType type, string? ns, string name, Action<JsonObject> mutate)
    {
        lock (_gate)
        {
            var old = Find(type, ns, name);
            if (old is null) return null;
            var updated = old.CloneObject();
            mutate(updated);
            return CommitLocked(type, updated, old, false);
        }
    }

    /// <summary>Removes an object now (a terminated pod, a finalized namespace), if it is still the one with <paramref name="uid"/>.</summary>
    internal void ForceRemove(ResourceType type, string? ns, string name, string uid)
    {
        lock (_gate)
        {
            if (Find(type, ns, name) is { } old && old.Uid() == uid) RemoveLocked(type, old);
        }
    }

    /// <summary>Objects in any resource that name <paramref name="ownerUid"/> in their ownerReferences.</summary>
    internal List<(ResourceType Type, JsonObject Object)> Dependents(string ownerUid)
    {
        lock (_gate)
        {
            return _objects.SelectMany(kv => kv.Value.Values.Where(o => OwnedBy(o, ownerUid)).Select(o => (kv.Key, o.CloneObject()))).ToList();
        }
    }

    private static bool OwnedBy(JsonObject o, string uid) => o.At("metadata", "ownerReferences").Objects().Any(r => r.Str("uid") == uid);

    private void OrphanDependentsLocked(string ownerUid)
    {
        foreach (var (type, dependent) in _objects.SelectMany(kv => kv.Value.Values.Where(o => OwnedBy(o, ownerUid)).Select(o => (kv.Key, o))).ToList())
        {
            var updated = dependent.CloneObject();
            var refs = updated.Meta().Arr("ownerReferences");
            foreach (var r in refs.Objects().Where(r => r.Str("uid") == ownerUid).ToList()) refs.Remove(r);
            if (refs.Count == 0) updated.Meta().Remove("ownerReferences");
            CommitLocked(type, updated, dependent, false);
        }
    }

    private JsonObject MarkDeleting(ResourceType type, JsonObject old, long graceSeconds)
    {
        var updated = old.CloneObject();
        Stamp(updated, graceSeconds);
        return CommitLocked(type, updated, old, false);
    }

    private void Stamp(JsonObject obj, long graceSeconds)
    {
        obj.Meta()["deletionTimestamp"] = JsonExtensions.Timestamp(_time.GetUtcNow().AddSeconds(graceSeconds));
        obj.Meta()["deletionGracePeriodSeconds"] = graceSeconds;
    }

    private JsonObject CommitLocked(ResourceType type, JsonObject updated, JsonObject old, bool dryRun)
    {
        updated.Meta()["resourceVersion"] = old.Str("metadata", "resourceVersion");
        if (JsonNode.DeepEquals(updated, old) || dryRun) return updated.CloneObject();
        updated.Meta()["resourceVersion"] = Next();
        _objects[type][Key(type, updated.Namespace(), updated.Name())] = updated;
        Publish("MODIFIED", type, updated, old);
        // The apiserver removes an object whose last finalizer went away once deletion was requested.
        if (updated.IsTerminating() && updated.At("metadata", "finalizers") is not JsonArray { Count: > 0 }
            && updated.Long("metadata", "deletionGracePeriodSeconds") is null or 0 && type != ResourceTypes.Namespaces)
        {
            return RemoveLocked(type, updated);
        }
        return updated.CloneObject();
    }

    private JsonObject RemoveLocked(ResourceType type, JsonObject old)
    {
        _objects[type].Remove(Key(type, old.Namespace(), old.Name()));
        var gone = old.CloneObject();
        gone.Meta()["resourceVersion"] = Next();
        Publish("DELETED", type, gone, null);
        return gone;
    }

    private string Next() => (++_resourceVersion).ToString(CultureInfo.InvariantCulture);

    /// <summary>A copy with apiVersion and kind first (as the apiserver writes them) and the namespace settled.</summary>
    private static JsonObject Normalize(ResourceType type, JsonObject input, string? urlNamespace)
    {
        var apiVersion = input.Str("apiVersion");
        var kind = input.Str("kind");
        if ((apiVersion is not null && apiVersion != type.ApiVersion) || (kind is not null && kind != type.Kind))
        {
            throw KubeApiException.BadRequest($"the API version in the data ({apiVersion}) does not match the expected API version ({type.ApiVersion}) or kind ({kind}) is not {type.Kind}");
        }
        var obj = new JsonObject { ["apiVersion"] = type.ApiVersion, ["kind"] = type.Kind };
        foreach (var (k, v) in input)
        {
            if (k is not ("apiVersion" or "kind")) obj[k] = v?.DeepClone();
        }
        var meta = obj.Meta();
        if (type.Namespaced)
        {
            var bodyNs = meta.Str("namespace");
            if (!string.IsNullOrEmpty(bodyNs) && !string.IsNullOrEmpty(urlNamespace) && bodyNs != urlNamespace)
            {
                throw KubeApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
            }
            meta["namespace"] = !string.IsNullOrEmpty(urlNamespace) ? urlNamespace : string.IsNullOrEmpty(bodyNs) ? "default" : bodyNs;
        }
        else
        {
            meta.Remove("namespace");
        }
        return obj;
    }

    internal static string RandomSuffix(int length) =>
        string.Create(length, 0, (span, _) =>
        {
            for (var i = 0; i < span.Length; i++) span[i] = SafeAlphabet[RandomNumberGenerator.GetInt32(SafeAlphabet.Length)];
        });
}
