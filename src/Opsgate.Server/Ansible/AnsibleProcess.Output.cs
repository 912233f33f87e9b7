using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Opsgate.Server.Ansible;

/// <summary>ansible's stdout and stderr, and the callback plugin's JSON lines, into the run's event stream.</summary>
internal sealed partial class AnsibleProcess
{
    private const int StderrTailLines = 20;

    private static async Task PumpOutputAsync(StreamReader reader, string stream, AnsibleEventWriter writer, Queue<string>? tail, CancellationToken ct)
    {
        try
        {
            await ReadOutputAsync(reader, stream, writer, tail, ct);
        }
        catch (ChannelClosedException)
        {
            // The writer failed; the runner reports why.
        }
    }

    private static async Task ReadOutputAsync(StreamReader reader, string stream, AnsibleEventWriter writer, Queue<string>? tail, CancellationToken ct)
    {
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (tail is not null)
            {
                lock (tail)
                {
                    tail.Enqueue(line.Length > 500 ? line[..500] : line);
                    if (tail.Count > StderrTailLines)
                        tail.Dequeue();
                }
            }
            await writer.OutputAsync(stream, line, ct);
        }
    }

    private static async Task PumpEventsAsync(Socket listener, AnsibleEventWriter writer, CancellationToken accept, CancellationToken ct)
    {
        // One connection: the callback plugin of this run (the socket lives in the run's 0700 directory). A run
        // that fails before loading callbacks never connects; then the drain limit ends the wait.
        Socket connection;
        try
        {
            connection = await listener.AcceptAsync(accept);
        }
        catch (OperationCanceledException) when (accept.IsCancellationRequested)
        {
            return;
        }
        using (connection)
        {
            await using var stream = new NetworkStream(connection, ownsSocket: false);
            try
            {
                await ReadLinesAsync(PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024)), writer, ct);
            }
            catch (ChannelClosedException)
            {
                // The writer failed; the runner reports why.
            }
        }
    }

    /// <summary>The longest callback line read (8 MiB); a longer one is skipped and counted as malformed, never buffered whole.</summary>
    internal const int MaxCallbackLineBytes = 8 * 1024 * 1024;

    /// <summary>The plugin's JSON lines as bytes, straight from the socket's buffers: no string per line.</summary>
    internal static async Task ReadLinesAsync(PipeReader pipe, AnsibleEventWriter writer, CancellationToken ct, int maxLineBytes = MaxCallbackLineBytes)
    {
        var skipping = false; // inside a line over the cap: its bytes are dropped up to its newline
        try
        {
            while (true)
            {
                var read = await pipe.ReadAsync(ct);
                var buffer = read.Buffer;
                while (buffer.PositionOf((byte)'\n') is { } end)
                {
                    var line = buffer.Slice(0, end);
                    buffer = buffer.Slice(buffer.GetPosition(1, end));
                    if (skipping || line.Length > maxLineBytes)
                    {
                        if (!skipping)
                            writer.SkippedLine();
                        skipping = false;
                        continue;
                    }
                    var pending = line.IsSingleSegment ? writer.CallbackAsync(line.FirstSpan, ct) : writer.CallbackAsync(line.ToArray(), ct);
                    if (!pending.IsCompletedSuccessfully)
                        await pending;
                }
                if (!skipping && buffer.Length > maxLineBytes)
                {
                    writer.SkippedLine();
                    skipping = true;
                }
                if (skipping)
                    buffer = buffer.Slice(buffer.End);
                if (read.IsCompleted)
                {
                    // A last line without its newline (the plugin closed mid-way) is still an event if it parses.
                    if (!buffer.IsEmpty)
                        await writer.CallbackAsync(buffer.ToArray(), ct);
                    break;
                }
                pipe.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        finally
        {
            await pipe.CompleteAsync();
        }
    }
}
