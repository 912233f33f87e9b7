using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace Opsgate.Server.Engine;

/// <summary>
/// One event as it goes out to clients, encoded once and shared by every client of the job: the SSE frame
/// (<c>id:</c>, <c>event:</c>, <c>data:</c>), whose data line is the JSON a WebSocket client gets.
/// </summary>
internal sealed class EventFrame(JobEventRow row)
{
    private sealed record Encoded(byte[] Bytes, int JsonStart, int JsonLength);

    private Encoded? _encoded;

    public long Seq => row.Seq;
    public string Type => row.Type;

    public ReadOnlyMemory<byte> Sse => Encode().Bytes;

    public ReadOnlyMemory<byte> Json
    {
        get
        {
            var e = Encode();
            return e.Bytes.AsMemory(e.JsonStart, e.JsonLength);
        }
    }

    // Encoded by whichever client gets there first; two that race encode the same bytes, and either result is kept.
    private Encoded Encode() => Volatile.Read(ref _encoded) ?? Interlocked.CompareExchange(ref _encoded, Build(row), null) ?? _encoded!;

    // One buffer and JSON writer per thread, reused: encoding allocates only the frame itself.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_json;

    private static Encoded Build(JobEventRow e)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        buffer.Write("id: "u8);
        Utf8Formatter.TryFormat(e.Seq, buffer.GetSpan(20), out var written);
        buffer.Advance(written);
        buffer.Write("\nevent: "u8);
        buffer.Advance(Encoding.UTF8.GetBytes(e.Type, buffer.GetSpan(Encoding.UTF8.GetMaxByteCount(e.Type.Length))));
        buffer.Write("\ndata: "u8);
        var start = buffer.WrittenCount;
        var w = t_json ??= new Utf8JsonWriter(buffer);
        w.Reset(buffer);
        w.WriteStartObject();
        w.WriteNumber("seq"u8, e.Seq);
        w.WriteString("ts"u8, e.Ts);
        w.WriteString("type"u8, e.Type);
        if (e.StepOrder is { } order)
            w.WriteNumber("step_order"u8, order);
        else
            w.WriteNull("step_order"u8);
        w.WritePropertyName("data"u8);
        if (e.Data is null)
            w.WriteNullValue();
        else
            w.WriteRawValue(e.Data, skipInputValidation: true);
        w.WriteEndObject();
        w.Flush();
        var length = buffer.WrittenCount - start;
        buffer.Write("\n\n"u8);
        return new Encoded(buffer.WrittenSpan.ToArray(), start, length);
    }
}

/// <summary>
/// A live client's view of one job's new events: a bounded buffer the appender fills right after its commit, so a
/// client gets new events without a database read and the appender never waits for a client. A client that falls
/// more than <see cref="Capacity"/> events behind is not sent the rest live: its buffer is dropped and it is told to
/// catch up from the database, which it then does at its own pace. Other appends of the job (steps, job.finished)
/// only poke it: it reads those from the database.
/// </summary>
internal sealed class LiveSubscription(string jobId, Action<LiveSubscription> unsubscribe) : IDisposable
{
    public const int Capacity = 32_768;

    private readonly Lock _lock = new();
    private List<EventFrame> _pending = [];
    private List<EventFrame> _spare = [];
    private bool _readDatabase;
    private TaskCompletionSource? _waiter;

    public string JobId { get; } = jobId;

    /// <summary>Events just committed, in seq order.</summary>
    internal void Offer(IReadOnlyList<EventFrame> frames)
    {
        TaskCompletionSource? wake;
        lock (_lock)
        {
            if (_readDatabase)
                return;
            if (_pending.Count + frames.Count > Capacity)
            {
                _pending.Clear();
                _readDatabase = true;
            }
            else
            {
                _pending.AddRange(frames);
            }
            (wake, _waiter) = (_waiter, null);
        }
        wake?.TrySetResult();
    }

    /// <summary>Something was appended that only the database has.</summary>
    internal void Poke()
    {
        TaskCompletionSource? wake;
        lock (_lock)
        {
            _readDatabase = true;
            (wake, _waiter) = (_waiter, null);
        }
        wake?.TrySetResult();
    }

    /// <summary>
    /// What arrived since the last take. The list is the caller's until its next take. <c>ReadDatabase</c>: events may
    /// be missing from it (the buffer overflowed, or an append was not offered live): read the database from the last seq sent.
    /// </summary>
    public (List<EventFrame> Frames, bool ReadDatabase) Take()
    {
        lock (_lock)
        {
            _spare.Clear();
            (_pending, _spare) = (_spare, _pending);
            var read = _readDatabase;
            _readDatabase = false;
            return (_spare, read);
        }
    }

    /// <summary>True when woken by new events; false after <paramref name="atMost"/> without any.</summary>
    public async Task<bool> WaitAsync(TimeSpan atMost, CancellationToken ct)
    {
        Task wait;
        lock (_lock)
        {
            if (_pending.Count > 0 || _readDatabase)
                return true;
            wait = (_waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        try
        {
            await wait.WaitAsync(atMost, ct);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public void Dispose() => unsubscribe(this);
}
