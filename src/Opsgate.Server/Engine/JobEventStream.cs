using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Opsgate.Server.Http;

namespace Opsgate.Server.Engine;

/// <summary>
/// Live job events. The database is read from the client's last seq onwards, so a reconnecting client gets
/// exactly what it missed; then the stream waits for the next append (woken at once in this process, re-read
/// every second for other replicas). A slow client never slows the job: it only falls behind in its own read
/// position and catches up from the database. The stream ends after <c>job.finished</c>, whose data carries
/// the total event count.
/// </summary>
internal static class JobEventStream
{
    private const int Page = 500;
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task ServerSentEventsAsync(string id, HttpContext http, JobStore store, JobSignals signals, long? after = null)
    {
        var from = after ?? 0;
        if (http.Request.Headers["Last-Event-ID"].FirstOrDefault() is { Length: > 0 } header)
        {
            if (!long.TryParse(header, NumberStyles.None, CultureInfo.InvariantCulture, out from))
            {
                await Problems.WriteAsync(http, 400, "Bad request", "Last-Event-ID: must be the id (seq) of an event from this stream");
                return;
            }
        }
        if (await FindAsync(http, id, from, store) is not { } job)
            return;
        if (JobStatus.IsFinished(job.Status) && from >= job.LastSeq)
        {
            // Nothing more will come. 204 also tells a browser's EventSource, which reconnects with Last-Event-ID
            // when a stream ends, to stop reconnecting rather than hold an idle stream open forever.
            http.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        await http.Response.Body.FlushAsync(http.RequestAborted);
        var writer = http.Response.BodyWriter;
        await PumpAsync(id, from, store, signals, ended: false,
            async (e, ct) =>
            {
                var text = $"id: {e.Seq}\nevent: {e.Type}\ndata: {Json(e)}\n\n";
                await writer.WriteAsync(Encoding.UTF8.GetBytes(text), ct);
            },
            async ct => await writer.WriteAsync(": keep-alive\n\n"u8.ToArray(), ct),
            async ct => await writer.FlushAsync(ct),
            http.RequestAborted);
    }

    public static async Task WebSocketAsync(string id, HttpContext http, JobStore store, JobSignals signals, long? after = null)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await Problems.WriteAsync(http, 400, "Bad request", "this endpoint needs a WebSocket upgrade; use /events for Server-Sent Events");
            return;
        }
        var from = after ?? 0;
        if (await FindAsync(http, id, from, store) is not { } job)
            return;
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        // Reading is needed to notice the client closing; anything the client sends is ignored.
        var reading = DrainAsync(socket, closed);
        await PumpAsync(id, from, store, signals, JobStatus.IsFinished(job.Status) && from >= job.LastSeq,
            (e, ct) => socket.SendAsync(Encoding.UTF8.GetBytes(Json(e)), WebSocketMessageType.Text, endOfMessage: true, ct),
            ct => Task.CompletedTask,
            ct => Task.CompletedTask,
            closed.Token);
        if (socket.State == WebSocketState.Open)
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "job finished", CancellationToken.None);
        await closed.CancelAsync();
        await reading;
    }

    /// <summary>The job, or null after answering 400/404.</summary>
    private static async Task<JobRow?> FindAsync(HttpContext http, string id, long from, JobStore store)
    {
        if (!JobIds.IsValid(id))
        {
            await Problems.WriteAsync(http, 400, "Bad request", "id: must be a job id (26 characters, as returned by submit)");
            return null;
        }
        if (from < 0)
        {
            await Problems.WriteAsync(http, 400, "Bad request", "after: must be 0 or a seq from this stream");
            return null;
        }
        if (await store.GetAsync(id, http.RequestAborted) is not { } found)
        {
            await Problems.WriteAsync(http, 404, "Not found", $"job {id} does not exist");
            return null;
        }
        return found.Job;
    }

    /// <param name="ended">The job is finished and the client has its last event already.</param>
    private static async Task PumpAsync(string id, long after, JobStore store, JobSignals signals, bool ended,
        Func<JobEventRow, CancellationToken, Task> send, Func<CancellationToken, Task> keepAlive, Func<CancellationToken, Task> flush, CancellationToken ct)
    {
        var quiet = TimeSpan.Zero;
        if (ended)
            return;
        string? last = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var events = await store.EventsAfterAsync(id, after, Page, ct);
                foreach (var e in events)
                {
                    await send(e, ct);
                    after = e.Seq;
                    last = e.Type;
                }
                await flush(ct);
                if (events.Count == Page)
                    continue;
                // The end is the newest event being job.finished: a retried job has a job.finished from its failed run
                // followed by job.retried and the events of the next run.
                if (last == "job.finished")
                    return;
                if (events.Count > 0)
                    quiet = TimeSpan.Zero;
                else if ((quiet += Recheck) >= KeepAlive)
                {
                    await keepAlive(ct);
                    await flush(ct);
                    quiet = TimeSpan.Zero;
                }
                await signals.WaitForEventsAsync(id, Recheck, ct);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException && ct.IsCancellationRequested)
        {
            // The client went away.
        }
    }

    private static async Task DrainAsync(WebSocket socket, CancellationTokenSource closed)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1024);
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var result = await socket.ReceiveAsync(buffer, closed.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                    break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // Closing.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            await closed.CancelAsync();
        }
    }

    /// <summary>One event as JSON: seq, ts, type, step (order) and the event's own data.</summary>
    public static string Json(JobEventRow e)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", e.Seq);
            w.WriteString("ts", e.Ts);
            w.WriteString("type", e.Type);
            if (e.StepOrder is { } order)
                w.WriteNumber("step_order", order);
            else
                w.WriteNull("step_order");
            w.WritePropertyName("data");
            if (e.Data is null)
                w.WriteNullValue();
            else
                w.WriteRawValue(e.Data, skipInputValidation: true);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
