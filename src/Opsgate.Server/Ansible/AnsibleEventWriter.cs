using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Opsgate.Server.Engine;

namespace Opsgate.Server.Ansible;

/// <summary>
/// Takes a run's callback events and output lines and appends them to the job's event stream in batches: the single
/// writer takes whatever has queued up while the previous batch was being written (up to the batch size) and
/// writes it in one transaction, so a fast playbook costs few transactions and a slow one shows every event at
/// once. Consecutive output lines become one <c>ansible.output</c> event. The queue is bounded: if the database
/// falls behind, ansible waits on its socket and pipes rather than the server's memory growing.
/// </summary>
internal sealed class AnsibleEventWriter : IDisposable
{
    private const int QueueLimit = 10_000;

    private readonly JobStore _store;
    private readonly AnsibleRunRequest _run;
    private readonly int _batchSize;
    private readonly long _maxOutputBytes;
    private readonly Channel<Item> _queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(QueueLimit) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly CancellationTokenSource _stop = new();
    private long _outputBytes;
    private long _droppedOutputBytes;
    private long _malformed;
    private CallbackLine? _line;

    public AnsibleEventWriter(JobStore store, AnsibleRunRequest run, int batchSize, long maxOutputBytes)
    {
        _store = store;
        _run = run;
        _batchSize = batchSize;
        _maxOutputBytes = maxOutputBytes;
        Completion = Task.Run(WriteLoopAsync);
    }

    private readonly record struct Item(NewEvent? Event, string? Stream, string? Line);

    public HostTally Tally { get; } = new();

    /// <summary>Events written (callback events and output events).</summary>
    public long Events { get; private set; }

    /// <summary>Cancelled when the run must stop: a write found the job's lease gone, or events cannot be written.</summary>
    public CancellationToken StopToken => _stop.Token;

    /// <summary>Another worker owns the job now; nothing more was written.</summary>
    public bool LeaseLost { get; private set; }

    public Task Completion { get; }

    public ValueTask OutputAsync(string stream, string line, CancellationToken ct) => _queue.Writer.WriteAsync(new Item(null, stream, line), ct);

    /// <summary>A callback line that was not read at all (longer than the reader takes); counted as malformed.</summary>
    public void SkippedLine() => Interlocked.Increment(ref _malformed);

    /// <summary>
    /// One JSON line from the callback plugin (UTF-8, without its newline). Called by the one reader of the plugin's
    /// connection, never concurrently: the line parser and the tally are that reader's.
    /// </summary>
    public ValueTask CallbackAsync(ReadOnlySpan<byte> line, CancellationToken ct)
    {
        var parsed = _line ??= new CallbackLine(_run.StepName);
        if (!parsed.TryRead(line))
        {
            Interlocked.Increment(ref _malformed);
            return ValueTask.CompletedTask;
        }
        var kind = parsed.Kind;
        switch (kind)
        {
            // The common events: the figures were picked up while parsing.
            case "runner_ok" or "runner_skipped" when parsed.Host is { } host:
                Tally.Count(kind, host, parsed.Changed);
                break;
            // Failures and the stats are few and need the messages and nested figures.
            case "runner_failed" or "runner_unreachable" or "item_failed" or "stats":
                if (JsonNode.Parse(parsed.Data) is JsonObject data)
                    Tally.Add(kind, data);
                break;
        }
        // A playbook may print a secret it was given (debug: var=db_password): what is recorded shows [REDACTED].
        return _queue.Writer.WriteAsync(new Item(new NewEvent(parsed.Type, _run.StepOrder, null) { Json = JobSecrets.Mask(parsed.Data, _run.Masked) }, null, null), ct);
    }

    public void Complete() => _queue.Writer.TryComplete();

    public void Dispose()
    {
        _stop.Dispose();
        _line?.Dispose();
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await DrainQueueAsync();
        }
        catch (Exception e)
        {
            // The readers see the queue closed and stop; the runner stops ansible and the step fails with this error.
            _queue.Writer.TryComplete(e);
            await _stop.CancelAsync();
            throw;
        }
    }

    private async Task DrainQueueAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<NewEvent>(Math.Min(_batchSize, 1024));
        var output = new StringBuilder();
        string? outputStream = null;

        void FlushOutput()
        {
            if (output.Length == 0)
                return;
            batch.Add(new NewEvent("ansible.output", _run.StepOrder, new JsonObject { ["step"] = _run.StepName, ["stream"] = outputStream, ["text"] = JobSecrets.Mask(output.ToString(), _run.Masked) }));
            output.Clear();
        }

        while (await reader.WaitToReadAsync())
        {
            while (batch.Count < _batchSize && reader.TryRead(out var item))
            {
                if (item.Line is { } line)
                {
                    if (outputStream != item.Stream)
                        FlushOutput();
                    outputStream = item.Stream;
                    var bytes = Encoding.UTF8.GetByteCount(line) + 1;
                    if (_outputBytes + bytes > _maxOutputBytes)
                    {
                        _droppedOutputBytes += bytes;
                        continue;
                    }
                    _outputBytes += bytes;
                    output.Append(line).Append('\n');
                }
                else
                {
                    FlushOutput();
                    batch.Add(item.Event!);
                }
            }
            FlushOutput();
            await WriteAsync(batch);
        }
        if (_droppedOutputBytes > 0 || _malformed > 0)
        {
            batch.Add(new NewEvent("ansible.truncated", _run.StepOrder, new JsonObject
            {
                ["step"] = _run.StepName,
                ["output_bytes_dropped"] = _droppedOutputBytes,
                ["malformed_callback_lines"] = _malformed,
            }));
            await WriteAsync(batch);
        }
    }

    private async Task WriteAsync(List<NewEvent> batch)
    {
        if (batch.Count == 0)
            return;
        // Written even after a cancel: what ansible reported before it stopped belongs to the job.
        if (!LeaseLost && !await _store.AppendAsync(_run.JobId, _run.Owner, batch, CancellationToken.None))
        {
            LeaseLost = true;
            await _stop.CancelAsync();
        }
        if (!LeaseLost)
            Events += batch.Count;
        batch.Clear();
    }
}
