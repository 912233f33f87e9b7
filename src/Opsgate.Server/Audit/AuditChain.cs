using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Opsgate.Server.Audit;

/// <summary>
/// The audit log's tamper evidence: each entry's hash is SHA-256 over a canonical encoding of all its
/// fields and the previous entry's hash, so changing, removing or re-ordering any stored row breaks
/// every hash after it. The canonical encoding is a JSON array in a fixed field order; timestamps are
/// written at microsecond precision, the precision both databases keep.
/// </summary>
internal static class AuditChain
{
    public static readonly string Genesis = new('0', 64);

    private const int MaxKeptBuffer = 64 * 1024;

    // Every batch hashes each of its entries on the writing thread: the encoding's buffer and writer are kept per thread.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static string ComputeHash(AuditEntry e)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        buffer.ResetWrittenCount();
        var w = t_writer ??= new Utf8JsonWriter(buffer);
        w.Reset(buffer);
        try
        {
            w.WriteStartArray();
            w.WriteNumberValue(e.Id);
            w.WriteStringValue(e.Ts.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
            Write(w, e.Actor);
            Write(w, e.SourceIp);
            Write(w, e.Action);
            Write(w, e.ResourceKind);
            Write(w, e.Namespace);
            Write(w, e.ResourceName);
            Write(w, e.RequestBody);
            Write(w, e.Status);
            if (e.HttpStatus is { } status)
                w.WriteNumberValue(status);
            else
                w.WriteNullValue();
            Write(w, e.ErrorMessage);
            Write(w, e.PrincipalId);
            Write(w, e.AuthMethod);
            Write(w, e.RequestId);
            w.WriteBooleanValue(e.DryRun);
            Write(w, e.JobId);
            Write(w, e.PrevHash);
            // Fields added later are appended only when set, so entries written before they existed keep their hashes.
            if (e.Cluster is not null)
                w.WriteStringValue(e.Cluster);
            w.WriteEndArray();
            w.Flush();
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(buffer.WrittenSpan, hash);
            return Convert.ToHexStringLower(hash);
        }
        finally
        {
            if (buffer.Capacity > MaxKeptBuffer)
                (t_buffer, t_writer) = (null, null); // a large body's buffer is not kept
        }
    }

    private static void Write(Utf8JsonWriter w, string? value)
    {
        if (value is null)
            w.WriteNullValue();
        else
            w.WriteStringValue(value);
    }
}
