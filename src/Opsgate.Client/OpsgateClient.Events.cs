using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Opsgate.Client;

/// <summary>How <see cref="OpsgateClient.StreamJobEventsAsync"/> behaves when the stream ends early or goes quiet.</summary>
public sealed record EventStreamOptions
{
    /// <summary>
    /// After a dropped connection (or a server restart), how long to keep reconnecting with Last-Event-ID before giving
    /// up with the last error. Zero: do not reconnect.
    /// </summary>
    public TimeSpan ReconnectFor { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The pause before each reconnect.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Stop when no event (nor keep-alive) came for this long: for "what is there so far". Null: until the job ends.</summary>
    public TimeSpan? StopWhenQuietFor { get; init; }

    /// <summary>Called before each reconnect, with the seq it resumes after and why the previous connection ended.</summary>
    public Action<long, Exception?>? OnReconnect { get; init; }
}

public sealed partial class OpsgateClient
{
    /// <summary>
    /// A job's events (GET /api/v1/jobs/{id}/events, Server-Sent Events) after seq <paramref name="after"/>, in order,
    /// each once. The stream ends after the job's last <c>job.finished</c>; a connection that ends before that (dropped,
    /// or the server restarted) is reopened with <c>Last-Event-ID</c> set to the last seq received, so nothing is
    /// missed and nothing repeats (the server replays from its database; events at or below that seq are skipped
    /// should one come twice anyway).
    /// </summary>
    public async IAsyncEnumerable<JobEvent> StreamJobEventsAsync(
        string id, long after = 0, EventStreamOptions? options = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        options ??= new EventStreamOptions();
        var last = after;
        var connected = false;
        DateTime? droppedAt = null;
        Exception? dropReason = null;
        var announced = false;
        while (true)
        {
            if (droppedAt is not null)
            {
                if (DateTime.UtcNow - droppedAt.Value > options.ReconnectFor)
                    throw dropReason ?? new HttpRequestException($"the event stream of job {id} ended before the job finished");
                // Said once per drop, not on every attempt while a restarting server is away.
                if (!announced)
                    options.OnReconnect?.Invoke(last, dropReason);
                announced = true;
                await Task.Delay(options.ReconnectDelay, ct);
            }
            using var request = new HttpRequestMessage(HttpMethod.Get, JobPath(id) + "/events");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            if (last > 0)
                request.Headers.Add("Last-Event-ID", last.ToString(CultureInfo.InvariantCulture));
            HttpResponseMessage response;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(RequestTimeout);
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            }
            catch (Exception e) when (connected && IsTransient(e, ct))
            {
                droppedAt ??= DateTime.UtcNow;
                dropReason = e;
                continue;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"the event stream of job {id}: no answer from {_http.BaseAddress} within {RequestTimeout.TotalSeconds:0} s");
            }
            using (response)
            {
                // After a restart a server may answer 503 until it is ready: worth waiting for, like a refused connection.
                if (connected && response.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout)
                {
                    droppedAt ??= DateTime.UtcNow;
                    dropReason = new HttpRequestException($"the server answered {(int)response.StatusCode}", null, response.StatusCode);
                    continue;
                }
                await ThrowIfErrorAsync(response, ct);
                connected = true;
                // 204: the job is finished and nothing follows the last seq this client has.
                if (response.StatusCode == HttpStatusCode.NoContent)
                    yield break;
                using var reader = new SseReader(await response.Content.ReadAsStreamAsync(ct), options.StopWhenQuietFor);
                string? lastType = null;
                var ended = false;
                while (true)
                {
                    SseFrame? frame;
                    try
                    {
                        frame = await reader.NextAsync(ct);
                    }
                    catch (Exception e) when (IsTransient(e, ct))
                    {
                        dropReason = e;
                        break;
                    }
                    if (frame is null)
                    {
                        // End of stream: the job's end if the newest event was job.finished, else a dropped connection.
                        ended = lastType == "job.finished" || reader.WentQuiet;
                        dropReason = new HttpRequestException($"the event stream of job {id} ended after seq {last}, before the job finished");
                        break;
                    }
                    if (frame.Data is null)
                        continue;
                    var received = JsonSerializer.Deserialize(frame.Data, OpsgateJson.Default.JobEvent)
                        ?? throw new JsonException($"an event of job {id} was JSON null");
                    if (received.Seq <= last)
                        continue;
                    last = received.Seq;
                    lastType = received.Type;
                    droppedAt = null;
                    announced = false;
                    yield return received;
                }
                if (ended)
                    yield break;
                if (options.ReconnectFor <= TimeSpan.Zero)
                    throw dropReason ?? new HttpRequestException($"the event stream of job {id} ended before the job finished");
                droppedAt ??= DateTime.UtcNow;
            }
        }
    }

    private static bool IsTransient(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is HttpRequestException or IOException or OperationCanceledException;

    private sealed record SseFrame(string? Id, string? Event, string? Data);

    /// <summary>Server-Sent Events framing (WHATWG): fields per line, a blank line ends an event, ':' starts a comment.</summary>
    private sealed class SseReader(Stream stream, TimeSpan? quiet) : IDisposable
    {
        private readonly StreamReader _reader = new(stream, Encoding.UTF8);

        public void Dispose() => _reader.Dispose();

        public bool WentQuiet { get; private set; }

        public async Task<SseFrame?> NextAsync(CancellationToken ct)
        {
            string? id = null, type = null;
            StringBuilder? data = null;
            while (true)
            {
                string? line;
                if (quiet is { } q)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    idle.CancelAfter(q);
                    try
                    {
                        line = await _reader.ReadLineAsync(idle.Token);
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                        WentQuiet = true;
                        return null;
                    }
                }
                else
                {
                    line = await _reader.ReadLineAsync(ct);
                }
                if (line is null)
                    return null;
                if (line.Length == 0)
                {
                    if (data is not null || id is not null)
                        return new SseFrame(id, type, data?.ToString());
                    continue;
                }
                if (line[0] == ':')
                    continue;
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                var field = colon < 0 ? line : line[..colon];
                var value = colon < 0 ? "" : line[(colon + 1)..];
                if (value.StartsWith(' '))
                    value = value[1..];
                switch (field)
                {
                    case "id":
                        id = value;
                        break;
                    case "event":
                        type = value;
                        break;
                    case "data":
                        if (data is null)
                            data = new StringBuilder(value);
                        else
                            data.Append('\n').Append(value);
                        break;
                }
            }
        }
    }
}
