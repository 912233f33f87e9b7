using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Opsgate.Server.Ansible;

/// <summary>
/// Rewrites one JSON line of the callback plugin into an event's data without building a DOM: <c>event</c> becomes
/// the event type (<c>ansible.&lt;kind&gt;</c>), the plugin's <c>seq</c> becomes <c>ansible_seq</c> (the job's seq is
/// assigned when the batch is written) and <c>step</c> names the step; every other property is copied as it came.
/// What the host tally needs from the common events (host, changed) is picked up on the way. One instance
/// per connection: it reuses its buffers and is not thread-safe.
/// </summary>
internal sealed class CallbackLine(string stepName) : IDisposable
{
    // The kinds the plugin sends, so the event type of each line is a shared string, not a new one.
    private static readonly (byte[] Kind, string Type)[] Known =
    [.. new[]
    {
        "runner_ok", "runner_skipped", "runner_failed", "runner_unreachable", "item_ok", "item_failed", "item_skipped",
        "task_start", "handler_start", "play_start", "playbook_start", "no_hosts_matched", "stats",
    }.Select(k => (Encoding.UTF8.GetBytes(k), "ansible." + k))];

    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _json = new(Stream.Null);
    private readonly JsonEncodedText _step = JsonEncodedText.Encode(stepName);

    /// <summary>The event type, <c>ansible.&lt;kind&gt;</c>.</summary>
    public string Type { get; private set; } = "";

    /// <summary>The kind as the plugin named it (<c>runner_ok</c>, ...).</summary>
    public string Kind => Type["ansible.".Length..];

    /// <summary>The rewritten data, JSON.</summary>
    public string Data { get; private set; } = "";

    public string? Host { get; private set; }
    public bool Changed { get; private set; }

    public void Dispose() => _json.Dispose();

    /// <summary>Reads one line; false when it is not a JSON object with a string <c>event</c>.</summary>
    public bool TryRead(ReadOnlySpan<byte> line)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        Type = "";
        Host = null;
        Changed = false;
        try
        {
            return Rewrite(line);
        }
        catch (JsonException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            // A value of the wrong type where a string or bool was expected (GetString, GetBoolean).
            return false;
        }
    }

    private bool Rewrite(ReadOnlySpan<byte> line)
    {
        var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 64 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            return false;
        _json.WriteStartObject();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            // The name is a slice of the line, which stays valid while the reader moves on.
            ReadOnlySpan<byte> name = reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan;
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                reader.Skip();
            var raw = line[start..(int)reader.BytesConsumed];
            if (name.SequenceEqual("event"u8))
            {
                if (reader.TokenType != JsonTokenType.String)
                    return false;
                Type = TypeOf(ref reader);
                continue;
            }
            if (name.SequenceEqual("seq"u8))
            {
                _json.WritePropertyName("ansible_seq"u8);
                _json.WriteRawValue(raw, skipInputValidation: true);
                continue;
            }
            if (name.SequenceEqual("step"u8) || name.SequenceEqual("ansible_seq"u8))
                continue;
            if (name.SequenceEqual("host"u8) && reader.TokenType == JsonTokenType.String)
                Host = reader.GetString();
            else if (name.SequenceEqual("changed"u8) && reader.TokenType is JsonTokenType.True or JsonTokenType.False)
                Changed = reader.GetBoolean();
            _json.WritePropertyName(name);
            _json.WriteRawValue(raw, skipInputValidation: true);
        }
        if (reader.TokenType != JsonTokenType.EndObject || reader.Read() || Type.Length == 0)
            return false;
        _json.WriteString("step"u8, _step);
        _json.WriteEndObject();
        _json.Flush();
        Data = Encoding.UTF8.GetString(_buffer.WrittenSpan);
        return true;
    }

    private static string TypeOf(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            foreach (var (kind, type) in Known)
            {
                if (reader.ValueSpan.SequenceEqual(kind))
                    return type;
            }
        }
        return "ansible." + reader.GetString();
    }
}
