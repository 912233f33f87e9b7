using System.Text;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>A span as an OTLP collector receives it: ids in lower-case hex, string attributes, its instrumentation scope.</summary>
public sealed record ReceivedSpan(string Scope, string TraceId, string SpanId, string ParentSpanId, string Name, int Kind, int StatusCode,
    IReadOnlyDictionary<string, string> Attributes)
{
    public const int KindServer = 2;
    public const int KindClient = 3;
    public const int StatusError = 2;

    public string? Attribute(string key) => Attributes.GetValueOrDefault(key);
}

/// <summary>
/// Reads the body of an OTLP/HTTP trace export (<c>POST /v1/traces</c>, <c>application/x-protobuf</c>): an
/// ExportTraceServiceRequest, decoded field by field from the protobuf wire format, as opentelemetry-proto's
/// trace.proto numbers them. Only what the tests look at is kept; other fields are skipped by their wire type.
/// </summary>
public static class OtlpTraces
{
    public static IReadOnlyList<ReceivedSpan> Parse(byte[] body)
    {
        var spans = new List<ReceivedSpan>();
        foreach (var (field, resourceSpans) in Fields(body))
        {
            if (field != 1)
                continue; // ExportTraceServiceRequest.resource_spans
            foreach (var (rsField, scopeSpans) in Fields(resourceSpans.Bytes))
            {
                if (rsField != 2)
                    continue; // ResourceSpans.scope_spans
                var scope = "";
                foreach (var (ssField, value) in Fields(scopeSpans.Bytes))
                {
                    if (ssField == 1)
                        scope = Fields(value.Bytes).Where(f => f.Field == 1).Select(f => f.Value.Text).FirstOrDefault() ?? ""; // InstrumentationScope.name
                    else if (ssField == 2)
                        spans.Add(Span(scope, value.Bytes));
                }
            }
        }
        return spans;
    }

    private static ReceivedSpan Span(string scope, byte[] span)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        int kind = 0, status = 0;
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (field, value) in Fields(span))
        {
            switch (field)
            {
                case 1: traceId = Convert.ToHexStringLower(value.Bytes); break;
                case 2: spanId = Convert.ToHexStringLower(value.Bytes); break;
                case 4: parent = Convert.ToHexStringLower(value.Bytes); break;
                case 5: name = value.Text; break;
                case 6: kind = (int)value.Number; break;
                case 9:
                    var (key, text) = KeyValue(value.Bytes);
                    attributes[key] = text;
                    break;
                case 15: status = (int)(Fields(value.Bytes).Where(f => f.Field == 3).Select(f => f.Value.Number).FirstOrDefault()); break; // Status.code
            }
        }
        return new ReceivedSpan(scope, traceId, spanId, parent, name, kind, status, attributes);
    }

    /// <summary>A KeyValue with its AnyValue as text: string_value as it is, bool and int values printed.</summary>
    private static (string Key, string Value) KeyValue(byte[] bytes)
    {
        string key = "", text = "";
        foreach (var (field, value) in Fields(bytes))
        {
            if (field == 1)
                key = value.Text;
            else if (field == 2)
            {
                foreach (var (anyField, any) in Fields(value.Bytes))
                {
                    text = anyField switch
                    {
                        1 => any.Text,
                        2 => any.Number != 0 ? "true" : "false",
                        3 => ((long)any.Number).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => text,
                    };
                }
            }
        }
        return (key, text);
    }

    private readonly record struct WireValue(ulong Number, byte[] Bytes)
    {
        public string Text => Encoding.UTF8.GetString(Bytes);
    }

    private static IEnumerable<(int Field, WireValue Value)> Fields(byte[] buffer)
    {
        var at = 0;
        while (at < buffer.Length)
        {
            var tag = Varint(buffer, ref at);
            var field = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0:
                    yield return (field, new WireValue(Varint(buffer, ref at), []));
                    break;
                case 1:
                    yield return (field, new WireValue(BitConverter.ToUInt64(buffer, at), []));
                    at += 8;
                    break;
                case 2:
                    var length = (int)Varint(buffer, ref at);
                    yield return (field, new WireValue(0, buffer[at..(at + length)]));
                    at += length;
                    break;
                case 5:
                    yield return (field, new WireValue(BitConverter.ToUInt32(buffer, at), []));
                    at += 4;
                    break;
                default:
                    throw new InvalidDataException($"protobuf wire type {tag & 7} at byte {at} is not one OTLP uses");
            }
        }
    }

    private static ulong Varint(byte[] buffer, ref int at)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = buffer[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
                return value;
        }
    }
}
