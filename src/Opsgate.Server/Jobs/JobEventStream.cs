using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;
using Opsgate.Server.Engine;
using Opsgate.Server.Http;

namespace Opsgate.Server.Jobs;

/// <summary>
/// Live job events. The database is read from the client's last seq onwards, so a reconnecting client gets
/// exactly what it missed; then new events come live (<see cref="LiveSubscription"/>: committed in this process,
/// encoded once for every client), and the database is read again whenever the live feed may lack something: the
/// client fell more than its buffer behind, an append was not offered live, seqs arrived out of order, or a second
/// passed without news (another replica may have written). A slow client never slows the job: the appender never
/// waits for it, and what it missed it reads from the database at its own pace. Every seq goes out once, in order.
/// The stream ends after <c>job.finished</c>, whose data carries the total event count; events deleted by the
/// retention are replaced by one <c>events.pruned</c> event with their count.
/// </summary>
internal static class JobEventStream
{
    private const int Page = 1000;
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task ServerSentEventsAsync(string id, HttpContext http, JobAccess access, JobStore store, JobSignals signals, long? after = null)
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
        if (await FindAsync(http, id, from, access) is not { } job)
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
        var pruned = Pruned(job, from);
        if (pruned is not null)
            http.Response.Headers[PrunedHeader] = job.EventsPrunedSeq!.Value.ToString(CultureInfo.InvariantCulture);
        await http.Response.Body.FlushAsync(http.RequestAborted);
        var writer = http.Response.BodyWriter;
        if (pruned is not null)
        {
            writer.Write(pruned.Sse.Span);
            await writer.FlushAsync(http.RequestAborted);
            from = pruned.Seq;
        }
        await PumpAsync(id, from, store, signals, ended: JobStatus.IsFinished(job.Status) && from >= job.LastSeq,
            (e, _) =>
            {
                // Buffered, not flushed: the pump flushes once per page or batch, and a slow client's flush is where it waits.
                writer.Write(e.Sse.Span);
                return ValueTask.CompletedTask;
            },
            async ct => await writer.WriteAsync(": keep-alive\n\n"u8.ToArray(), ct),
            async ct => await writer.FlushAsync(ct),
            http.RequestAborted);
    }

    public static async Task WebSocketAsync(string id, HttpContext http, JobAccess access, JobStore store, JobSignals signals, long? after = null)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await Problems.WriteAsync(http, 400, "Bad request", "this endpoint needs a WebSocket upgrade; use /events for Server-Sent Events");
            return;
        }
        var from = after ?? 0;
        if (await FindAsync(http, id, from, access) is not { } job)
            return;
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        if (Pruned(job, from) is { } pruned)
        {
            await socket.SendAsync(pruned.Json, WebSocketMessageType.Text, endOfMessage: true, http.RequestAborted);
            from = pruned.Seq;
        }
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        // Reading is needed to notice the client closing; anything the client sends is ignored.
        var reading = DrainAsync(socket, closed);
        await PumpAsync(id, from, store, signals, JobStatus.IsFinished(job.Status) && from >= job.LastSeq,
            (e, ct) => socket.SendAsync(e.Json, WebSocketMessageType.Text, endOfMessage: true, ct),
            ct => Task.CompletedTask,
            ct => Task.CompletedTask,
            closed.Token);
        if (socket.State == WebSocketState.Open)
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "job finished", CancellationToken.None);
        await closed.CancelAsync();
        await reading;
    }

    /// <summary>Response header on the events of a job whose events were pruned: the seq up to which they were.</summary>
    public const string PrunedHeader = "Opsgate-Events-Pruned";

    /// <summary>
    /// In place of events the retention deleted, one <c>events.pruned</c> event with the seq of the last of them (a
    /// reconnect resumes after it) and their count, so a client knows they existed rather than seeing nothing.
    /// </summary>
    private static EventFrame? Pruned(JobRow job, long from)
    {
        if (job.EventsPrunedSeq is not { } through || from >= through)
            return null;
        var data = new System.Text.Json.Nodes.JsonObject { ["events"] = through, ["pruned_at"] = job.EventsPrunedAt, ["reason"] = "Jobs:EventRetention" };
        return new EventFrame(new JobEventRow { JobId = job.Id, Seq = through, Ts = job.EventsPrunedAt ?? default, Type = "events.pruned", Data = data.ToJsonString() });
    }

    /// <summary>The job, or null after answering 400/404.</summary>
    private static async Task<JobRow?> FindAsync(HttpContext http, string id, long from, JobAccess access)
    {
        if (from < 0)
        {
            await Problems.WriteAsync(http, 400, "Bad request", "after: must be 0 or a seq from this stream");
            return null;
        }
        var (found, refused) = await access.CheckAsync(http, id, JobAction.Read);
        if (found is null)
            await refused!.ExecuteAsync(http);
        return found?.Job;
    }

    /// <param name="ended">The job is finished and the client has its last event already.</param>
    private static async Task PumpAsync(string id, long after, JobStore store, JobSignals signals, bool ended,
        Func<EventFrame, CancellationToken, ValueTask> send, Func<CancellationToken, Task> keepAlive, Func<CancellationToken, Task> flush, CancellationToken ct)
    {
        if (ended)
            return;
        // Subscribed before the first read: whatever is committed after it arrives live, and the overlap is skipped by seq.
        using var live = signals.Subscribe(id);
        var readDatabase = true;
        var quiet = TimeSpan.Zero;
        string? last = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (readDatabase)
                {
                    readDatabase = false;
                    IReadOnlyList<JobEventRow> page;
                    do
                    {
                        page = await store.EventsAfterAsync(id, after, Page, ct);
                        foreach (var row in page)
                        {
                            await send(new EventFrame(row), ct);
                            after = row.Seq;
                            last = row.Type;
                        }
                        await flush(ct);
                    }
                    while (page.Count == Page);
                    // The end is the newest event being job.finished: a retried job has a job.finished from its failed
                    // run followed by job.retried and the events of the next run.
                    if (last == "job.finished")
                        return;
                }

                var (frames, missing) = live.Take();
                var sent = false;
                foreach (var frame in frames)
                {
                    if (frame.Seq <= after)
                        continue;
                    if (frame.Seq != after + 1)
                    {
                        // Committed out of order by two writers, or an append this process did not offer live.
                        missing = true;
                        break;
                    }
                    await send(frame, ct);
                    after = frame.Seq;
                    last = frame.Type;
                    sent = true;
                }
                if (sent)
                {
                    await flush(ct);
                    quiet = TimeSpan.Zero;
                }
                if (missing)
                {
                    readDatabase = true;
                    continue;
                }
                if (!await live.WaitAsync(Recheck, ct))
                {
                    // Quiet for a while: re-read anyway, another replica may have written events.
                    readDatabase = true;
                    if ((quiet += Recheck) >= KeepAlive)
                    {
                        await keepAlive(ct);
                        await flush(ct);
                        quiet = TimeSpan.Zero;
                    }
                }
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
}
