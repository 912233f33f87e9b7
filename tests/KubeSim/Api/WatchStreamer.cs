using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using KubeSim.Store;
using Microsoft.AspNetCore.Http;

namespace KubeSim.Api;

/// <summary>
/// <c>?watch=true</c>: a chunked stream of <c>{"type":...,"object":...}</c> lines, one per event, flushed as
/// they happen, until timeoutSeconds, the client leaves, the watcher falls behind, or the server stops.
/// </summary>
internal sealed class WatchStreamer(KubeStore store, CancellationToken serverStopping)
{
    private const int Capacity = 1000;

    public async Task StreamAsync(HttpContext ctx, ResourceRequest r, bool table)
    {
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"], r.Type);
        var sendInitial = ResourceHandlers.IsTrue(q["sendInitialEvents"]);
        long? from = null;
        if (!sendInitial && q["resourceVersion"].ToString() is { Length: > 0 } rvText)
        {
            from = long.TryParse(rvText, NumberStyles.None, CultureInfo.InvariantCulture, out var rv)
                ? rv
                : throw KubeApiException.BadRequest($"invalid resource version: {rvText}");
        }
        var bookmarks = ResourceHandlers.IsTrue(q["allowWatchBookmarks"]);
        using var sub = store.Watch(r.Type, r.Namespace, labels, fields, from, Capacity, out var initial, out var startRv);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, serverStopping);
        if (int.TryParse(q["timeoutSeconds"], out var timeout) && timeout > 0) cts.CancelAfter(TimeSpan.FromSeconds(timeout));

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.StartAsync(cts.Token);
        await ctx.Response.Body.FlushAsync(cts.Token);
        var includeObject = q["includeObject"].ToString();
        try
        {
            if (sendInitial && initial == 0 && bookmarks) await WriteAsync(ctx, InitialEventsEnd(r.Type, startRv), cts.Token);
            while (await sub.Events.WaitToReadAsync(cts.Token))
            {
                while (sub.Events.TryRead(out var e))
                {
                    JsonNode obj = table ? TablePrinter.Table(r.Type, [e.Object], e.ResourceVersion, includeObject, store.Time.GetUtcNow()) : e.Object;
                    await WriteAsync(ctx, new JsonObject { ["type"] = e.Type, ["object"] = obj.DeepClone() }, cts.Token);
                    if (sendInitial && bookmarks && --initial == 0) await WriteAsync(ctx, InitialEventsEnd(r.Type, startRv), cts.Token);
                }
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            // Timeout, client gone or server stopping: the stream simply ends, as the apiserver's does.
        }
    }

    private static JsonObject InitialEventsEnd(ResourceType type, long rv) => new()
    {
        ["type"] = "BOOKMARK",
        ["object"] = new JsonObject
        {
            ["kind"] = type.Kind,
            ["apiVersion"] = type.ApiVersion,
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture),
                ["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" },
            },
        },
    };

    private static async Task WriteAsync(HttpContext ctx, JsonObject line, CancellationToken ct)
    {
        await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line.ToJsonString() + "\n"), ct);
        await ctx.Response.Body.FlushAsync(ct);
    }
}
