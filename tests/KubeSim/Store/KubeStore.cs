using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace KubeSim.Store;

/// <summary>
/// The in-memory object store: every object of every served resource, one resourceVersion counter
/// for all of them (like etcd's revision), and watch fan-out. Thread-safe: one lock guards objects,
/// history and watchers, so an event is delivered to every watcher in resourceVersion order.
/// Objects go in and come out as copies; callers never share the store's instances.
/// </summary>
public sealed partial class KubeStore
{
    /// <summary>
    /// Changes kept for watches that start at a resourceVersion; older ones are 410 Expired and the client lists again, as
    /// with a real API server (whose watch cache keeps 100 per resource by default). Each change holds a copy of its object
    /// as JSON nodes: with 10,000 kept, the kube benchmark's direct requests stalled for 100-250 ms at times (p99 40-60 ms,
    /// worse with a blocking collector, so the garbage collector walking the copies); with 1,000, under 50 ms.
    /// </summary>
    internal const int HistoryCapacity = 1_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<ResourceType, SortedDictionary<string, JsonObject>> _objects = [];
    private readonly EventHistory _history = new(HistoryCapacity);
    private readonly List<WatchSubscription> _watchers = [];
    private readonly TimeProvider _time;
    private long _resourceVersion;

    internal KubeStore(TimeProvider time)
    {
        _time = time;
        Tokens = new ServiceAccountTokens(this);
        foreach (var type in ResourceTypes.All) _objects[type] = new(StringComparer.Ordinal);
        foreach (var ns in new[] { "default", "kube-system", "kube-public", "kube-node-lease" })
        {
            CreateCore(ResourceTypes.Namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } }, dryRun: false);
        }
    }

    /// <summary>The newest resourceVersion handed out.</summary>
    public long ResourceVersion
    {
        get { lock (_gate) return _resourceVersion; }
    }

    internal TimeProvider Time => _time;

    /// <summary>Service account tokens KubeSim accepts besides the configured one.</summary>
    public ServiceAccountTokens Tokens { get; }

    /// <summary>A copy of one object, or null. <paramref name="apiVersion"/> is e.g. "v1" or "apps/v1", <paramref name="resource"/> the plural.</summary>
    public JsonObject? Get(string apiVersion, string resource, string? ns, string name) =>
        GetCore(ResourceTypes.Require(apiVersion, resource), ns, name);

    /// <summary>Copies of the matching objects, sorted by namespace and name; <paramref name="ns"/> null means all namespaces.</summary>
    public IReadOnlyList<JsonObject> List(string apiVersion, string resource, string? ns = null, string? labelSelector = null, string? fieldSelector = null)
    {
        var type = ResourceTypes.Require(apiVersion, resource);
        return ListCore(type, ns, LabelSelector.Parse(labelSelector), FieldSelector.Parse(fieldSelector, type)).Items;
    }

    /// <summary>Creates an object (apiVersion and kind in it say which resource); returns what was stored.</summary>
    public JsonObject Create(JsonObject obj, bool dryRun = false)
    {
        var type = TypeOf(obj);
        return CreateCore(type, type.Namespaced ? NamespaceOf(obj) : null, obj, dryRun);
    }

    /// <summary>Replaces an object; a set metadata.resourceVersion must be the current one (409 otherwise).</summary>
    public JsonObject Update(JsonObject obj, bool dryRun = false)
    {
        var type = TypeOf(obj);
        return ReplaceCore(type, type.Namespaced ? NamespaceOf(obj) : null, obj.Name(), obj, null, dryRun);
    }

    /// <summary>Replaces only the status of an object (the status subresource).</summary>
    public JsonObject UpdateStatus(JsonObject obj)
    {
        var type = TypeOf(obj);
        return ReplaceCore(type, type.Namespaced ? NamespaceOf(obj) : null, obj.Name(), obj, "status", false);
    }

    /// <summary>Deletes like the API does (pods terminate gracefully; finalizers hold objects). Throws NotFound.</summary>
    public JsonObject Delete(string apiVersion, string resource, string? ns, string name, long? gracePeriodSeconds = null) =>
        DeleteCore(ResourceTypes.Require(apiVersion, resource), ns, name, new DeleteOptions(gracePeriodSeconds), dryRun: false);

    /// <summary>Creates or replaces every object in a YAML (multi-document) or JSON manifest; status is kept on replace.</summary>
    public IReadOnlyList<JsonObject> Apply(string yamlOrJson)
    {
        var result = new List<JsonObject>();
        foreach (var obj in Manifests.Parse(yamlOrJson))
        {
            var type = TypeOf(obj);
            var ns = type.Namespaced ? NamespaceOf(obj) : null;
            lock (_gate)
            {
                if (Find(type, ns, obj.Name()) is null)
                {
                    result.Add(CreateCore(type, ns, obj, false));
                }
                else
                {
                    obj.Meta().Remove("resourceVersion");
                    result.Add(ReplaceCore(type, ns, obj.Name(), obj, null, false));
                }
            }
        }
        return result;
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> holds for the object (null when it does not exist) and returns
    /// the object then; throws <see cref="TimeoutException"/> naming the last state seen.
    /// </summary>
    public async Task<JsonObject?> WaitForAsync(
        string apiVersion, string resource, string? ns, string name, Func<JsonObject?, bool> condition, TimeSpan timeout, CancellationToken ct = default)
    {
        var type = ResourceTypes.Require(apiVersion, resource);
        using var sub = Subscribe(type, ns, LabelSelector.Everything, FieldSelector.Everything, capacity: 0);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var current = GetCore(type, ns, name);
        try
        {
            while (!condition(current))
            {
                var e = await sub.Events.ReadAsync(cts.Token);
                if (e.Object.Name() != name) continue;
                current = e.Type == "DELETED" ? null : e.Object.CloneObject();
            }
            return current;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{type.GroupResource} {ns}/{name}: condition not met within {timeout}; last state: {current?.ToJsonString() ?? "absent"}");
        }
    }

    /// <summary>Waits until <paramref name="condition"/> (evaluated again after every change) holds; throws <see cref="TimeoutException"/>.</summary>
    public async Task WaitUntilAsync(Func<KubeStore, bool> condition, TimeSpan timeout, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        using var sub = Subscribe(null, null, LabelSelector.Everything, FieldSelector.Everything, capacity: 0);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            while (!condition(this))
            {
                await sub.Events.ReadAsync(cts.Token);
                while (sub.Events.TryRead(out _))
                {
                    // Drain: the condition reads the current state, not the events.
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"condition not met within {timeout}");
        }
    }

    internal JsonObject? GetCore(ResourceType type, string? ns, string name)
    {
        lock (_gate) return Find(type, ns, name)?.CloneObject();
    }

    internal (List<JsonObject> Items, long ResourceVersion) ListCore(ResourceType type, string? ns, LabelSelector labels, FieldSelector fields)
    {
        lock (_gate)
        {
            var items = _objects[type].Values
                .Where(o => (string.IsNullOrEmpty(ns) || o.Namespace() == ns) && labels.Matches(o) && fields.Matches(o))
                .Select(o => o.CloneObject())
                .ToList();
            return (items, _resourceVersion);
        }
    }

    /// <summary>
    /// Starts a watch. <paramref name="fromResourceVersion"/>: null/0 = synthetic ADDED for current objects, then changes;
    /// N = every change after N (410 Expired when N is older than the kept history).
    /// </summary>
    internal WatchSubscription Watch(ResourceType type, string? ns, LabelSelector labels, FieldSelector fields, long? fromResourceVersion, int capacity, out int initialEvents, out long startResourceVersion)
    {
        initialEvents = 0;
        lock (_gate)
        {
            if (fromResourceVersion is > 0 && fromResourceVersion < _history.Floor)
            {
                throw KubeApiException.Expired($"too old resource version: {fromResourceVersion} ({_history.Floor})");
            }
            var sub = Subscribe(type, ns, labels, fields, capacity);
            startResourceVersion = _resourceVersion;
            if (fromResourceVersion is null or 0)
            {
                foreach (var o in _objects[type].Values.Where(sub.Matches))
                {
                    sub.Write(new WatchEvent("ADDED", type, o.CloneObject(), long.Parse(o.Str("metadata", "resourceVersion")!, System.Globalization.CultureInfo.InvariantCulture)));
                    initialEvents++;
                }
            }
            else
            {
                foreach (var e in _history.Since(fromResourceVersion.Value)) sub.Offer(e);
            }
            return sub;
        }
    }

    /// <summary>Every change to every resource, unbounded: for the controllers, which must not miss one.</summary>
    internal ChannelReader<WatchEvent> SubscribeAll(out IDisposable subscription)
    {
        var sub = Subscribe(null, null, LabelSelector.Everything, FieldSelector.Everything, capacity: 0);
        subscription = sub;
        return sub.Events;
    }

    private WatchSubscription Subscribe(ResourceType? type, string? ns, LabelSelector labels, FieldSelector fields, int capacity)
    {
        var sub = new WatchSubscription(type, ns, labels, fields, capacity, s =>
        {
            lock (_gate) _watchers.Remove(s);
        });
        lock (_gate) _watchers.Add(sub);
        return sub;
    }

    /// <summary>Ends every watch (server shutdown).</summary>
    internal void CloseWatches()
    {
        lock (_gate)
        {
            foreach (var w in _watchers) w.Complete();
        }
    }

    private void Publish(string type, ResourceType resource, JsonObject obj, JsonObject? old)
    {
        var e = new StoreEvent(type, resource, obj.CloneObject(), old, _resourceVersion);
        _history.Add(e);
        foreach (var w in _watchers) w.Offer(e);
    }

    private JsonObject? Find(ResourceType type, string? ns, string name) =>
        _objects[type].GetValueOrDefault(Key(type, ns, name));

    private static string Key(ResourceType type, string? ns, string name) => type.Namespaced ? $"{ns}/{name}" : name;

    private static ResourceType TypeOf(JsonObject obj)
    {
        var apiVersion = obj.Str("apiVersion") ?? throw KubeApiException.BadRequest("Object 'apiVersion' is missing");
        var kind = obj.Str("kind") ?? throw KubeApiException.BadRequest("Object 'Kind' is missing");
        return ResourceTypes.FindByKind(apiVersion, kind)
            ?? throw KubeApiException.NotFoundPath($"the server doesn't have a resource type for {apiVersion} {kind}");
    }

    private static string NamespaceOf(JsonObject obj) => obj.Str("metadata", "namespace") is { Length: > 0 } ns ? ns : "default";
}

/// <summary>The DeleteOptions fields KubeSim honours.</summary>
internal sealed record DeleteOptions(long? GracePeriodSeconds = null, string? PropagationPolicy = null, string? PreconditionUid = null, string? PreconditionResourceVersion = null);
