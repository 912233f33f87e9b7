using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using KubeSim.Store;
using Microsoft.Extensions.Logging;

namespace KubeSim.Controllers;

internal readonly record struct ObjectKey(ResourceType Type, string Namespace, string Name);

/// <summary>
/// The simulated controller-manager, scheduler and kubelet. Store events (from an unbounded subscription,
/// so none is lost) become keys in a de-duplicating work queue; one worker reconciles them one at a time
/// from the store's current state, so reconcilers are level-triggered and idempotent. Timed work (a pod
/// turning Ready, a grace period ending) re-enqueues the key when due. Deleting an owner deletes its
/// dependents (background garbage collection).
/// </summary>
internal sealed partial class ControllerHost : IAsyncDisposable
{
    private readonly KubeStore _store;
    private readonly KubeSimOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _caPem;
    private readonly Channel<ObjectKey> _queue = Channel.CreateUnbounded<ObjectKey>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<ObjectKey, byte> _queued = new();
    private readonly CancellationTokenSource _stop = new();
    private IDisposable? _subscription;
    private Task _pump = Task.CompletedTask;
    private Task _worker = Task.CompletedTask;

    public ControllerHost(KubeStore store, KubeSimOptions options, string? caPem, ILogger logger)
    {
        _caPem = caPem ?? "";
        _store = store;
        _options = options;
        _time = store.Time;
        _logger = logger;
    }

    public void Start()
    {
        var events = _store.SubscribeAll(out _subscription);
        foreach (var type in ResourceTypes.All)
        {
            foreach (var o in _store.ListCore(type, null, LabelSelector.Everything, FieldSelector.Everything).Items)
            {
                Enqueue(new ObjectKey(type, o.Namespace(), o.Name()));
            }
        }
        _pump = Task.Run(() => PumpAsync(events));
        _worker = Task.Run(WorkAsync);
    }

    private async Task PumpAsync(ChannelReader<WatchEvent> events)
    {
        try
        {
            await foreach (var e in events.ReadAllAsync(_stop.Token))
            {
                try
                {
                    OnEvent(e);
                }
                catch (KubeApiException ex)
                {
                    LogReconcileFailed(_logger, e.Resource.GroupResource, e.Object.Name(), ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private void OnEvent(WatchEvent e)
    {
        var o = e.Object;
        Enqueue(new ObjectKey(e.Resource, o.Namespace(), o.Name()));
        if (e.Resource == ResourceTypes.Pods)
        {
            if (ControllerOf(o) is { } owner) Enqueue(owner);
            if (e.Type == "DELETED")
            {
                Forget(o.Uid());
                foreach (var claim in ClaimNames(o)) Enqueue(new ObjectKey(ResourceTypes.Pvcs, o.Namespace(), claim));
            }
        }
        if (e.Resource == ResourceTypes.Pvcs && e.Type == "DELETED")
        {
            foreach (var sts in _store.ListCore(ResourceTypes.StatefulSets, o.Namespace(), LabelSelector.Everything, FieldSelector.Everything).Items)
            {
                Enqueue(new ObjectKey(ResourceTypes.StatefulSets, sts.Namespace(), sts.Name()));
            }
        }
        if (e.Type == "DELETED")
        {
            if (e.Resource.Namespaced) Enqueue(new ObjectKey(ResourceTypes.Namespaces, "", o.Namespace()));
            CollectGarbage(o.Uid());
        }
    }

    /// <summary>Background cascading deletion: dependents of a deleted owner are deleted too.</summary>
    private void CollectGarbage(string ownerUid)
    {
        foreach (var (type, dependent) in _store.Dependents(ownerUid))
        {
            try
            {
                _store.DeleteCore(type, dependent.Namespace(), dependent.Name(), new DeleteOptions(), dryRun: false);
            }
            catch (KubeApiException e) when (e.Code == 404)
            {
            }
        }
    }

    private async Task WorkAsync()
    {
        try
        {
            await foreach (var key in _queue.Reader.ReadAllAsync(_stop.Token))
            {
                _queued.TryRemove(key, out _);
                try
                {
                    Reconcile(key);
                }
                catch (KubeApiException e)
                {
                    LogReconcileFailed(_logger, key.Type.GroupResource, key.Name, e.Message);
                    Schedule(key, TimeSpan.FromMilliseconds(100));
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private void Reconcile(ObjectKey key)
    {
        switch (key.Type.Plural)
        {
            case "pods": ReconcilePod(key); break;
            case "deployments": ReconcileDeployment(key); break;
            case "statefulsets": ReconcileStatefulSet(key); break;
            case "persistentvolumeclaims": ReconcileClaim(key); break;
            case "namespaces": ReconcileNamespace(key); break;
            case "secrets": ReconcileTokenSecret(key); break;
        }
    }

    private void Enqueue(ObjectKey key)
    {
        if (key.Type.Plural is "pods" or "deployments" or "statefulsets" or "persistentvolumeclaims" or "namespaces" or "secrets" && _queued.TryAdd(key, 0))
        {
            _queue.Writer.TryWrite(key);
        }
    }

    private void Schedule(ObjectKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Enqueue(key);
            return;
        }
        _ = Task.Delay(delay, _time, _stop.Token).ContinueWith(
            t => { if (!t.IsCanceled) Enqueue(key); },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private static ObjectKey? ControllerOf(JsonObject o)
    {
        var owner = o.At("metadata", "ownerReferences").Objects().FirstOrDefault(r => r.Bool("controller") == true);
        var type = owner is null ? null : ResourceTypes.FindByKind(owner.Str("apiVersion") ?? "", owner.Str("kind") ?? "");
        return type is null ? null : new ObjectKey(type, o.Namespace(), owner!.Str("name") ?? "");
    }

    private static string? ControllerUid(JsonObject o) =>
        o.At("metadata", "ownerReferences").Objects().FirstOrDefault(r => r.Bool("controller") == true)?.Str("uid");

    private List<JsonObject> OwnedPods(JsonObject owner) =>
        _store.ListCore(ResourceTypes.Pods, owner.Namespace(), LabelSelector.Everything, FieldSelector.Everything).Items
            .Where(p => ControllerUid(p) == owner.Uid()).ToList();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _subscription?.Dispose();
        _queue.Writer.TryComplete();
        await Task.WhenAll(_pump, _worker);
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "reconcile of {Resource} {Name} failed: {Error}")]
    private static partial void LogReconcileFailed(ILogger logger, string resource, string name, string error);
}
