using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace KubeSim.Store;

/// <summary>A change as the store records it: the new object, and for MODIFIED the object before.</summary>
internal sealed record StoreEvent(string Type, ResourceType Resource, JsonObject Object, JsonObject? Old, long ResourceVersion);

/// <summary>A watch event as a watcher sees it, after its selectors were applied.</summary>
internal sealed record WatchEvent(string Type, ResourceType Resource, JsonObject Object, long ResourceVersion);

/// <summary>
/// One watcher. Events are written under the store lock into a bounded channel; a watcher that falls
/// behind by more than its capacity is closed (like the apiserver drops slow watchers) and must re-list.
/// </summary>
internal sealed class WatchSubscription : IDisposable
{
    private readonly Channel<WatchEvent> _channel;
    private readonly Action<WatchSubscription> _unsubscribe;

    public WatchSubscription(ResourceType? type, string? ns, LabelSelector labels, FieldSelector fields, int capacity, Action<WatchSubscription> unsubscribe)
    {
        Type = type;
        Namespace = string.IsNullOrEmpty(ns) ? null : ns;
        Labels = labels;
        Fields = fields;
        _unsubscribe = unsubscribe;
        _channel = capacity > 0
            ? Channel.CreateBounded<WatchEvent>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait })
            : Channel.CreateUnbounded<WatchEvent>(new UnboundedChannelOptions { SingleReader = true });
    }

    public ResourceType? Type { get; }
    public string? Namespace { get; }
    public LabelSelector Labels { get; }
    public FieldSelector Fields { get; }
    public bool Overflowed { get; private set; }

    public ChannelReader<WatchEvent> Events => _channel.Reader;

    public bool Matches(JsonObject obj) =>
        (Namespace is null || obj.Namespace() == Namespace) && Labels.Matches(obj) && Fields.Matches(obj);

    /// <summary>Translates a store event for this watcher (selector transitions become ADDED/DELETED) and queues it.</summary>
    public void Offer(StoreEvent e)
    {
        if (Type is not null && e.Resource != Type) return;
        var now = Matches(e.Object);
        var before = e.Old is not null && Matches(e.Old);
        var type = e.Type switch
        {
            "MODIFIED" when now && before => "MODIFIED",
            "MODIFIED" when now => "ADDED",
            "MODIFIED" when before => "DELETED",
            "ADDED" or "DELETED" when now => e.Type,
            _ => null,
        };
        if (type is not null) Write(new WatchEvent(type, e.Resource, e.Object, e.ResourceVersion));
    }

    public void Write(WatchEvent e)
    {
        if (Overflowed) return;
        if (!_channel.Writer.TryWrite(e))
        {
            Overflowed = true;
            _channel.Writer.TryComplete();
        }
    }

    public void Complete() => _channel.Writer.TryComplete();

    public void Dispose()
    {
        _channel.Writer.TryComplete();
        _unsubscribe(this);
    }
}

/// <summary>The recent change history, so a watch can start at a resourceVersion a list returned.</summary>
internal sealed class EventHistory(int capacity)
{
    private readonly Queue<StoreEvent> _events = new();

    /// <summary>Events at or below this resourceVersion were dropped: watching from before it is 410 Expired.</summary>
    public long Floor { get; private set; }

    public void Add(StoreEvent e)
    {
        _events.Enqueue(e);
        while (_events.Count > capacity) Floor = _events.Dequeue().ResourceVersion;
    }

    public IEnumerable<StoreEvent> Since(long resourceVersion) => _events.Where(e => e.ResourceVersion > resourceVersion);
}
