using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>
/// Sends a request whose target goes on the wire byte for byte. HttpClient passes URLs through
/// <see cref="Uri"/>, which decodes <c>%2e</c> and removes dot segments before sending, so a path-traversal
/// test through it would test the client, not the server.
/// </summary>
public static class RawHttp
{
    public sealed record Response(int Status, IReadOnlyDictionary<string, string> Headers, string Body)
    {
        public string? MediaType => Headers.TryGetValue("content-type", out var type) ? type.Split(';')[0].Trim() : null;
    }

    public static async Task<Response> SendAsync(Uri server, string method, string target, string? apiKey)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, timeout.Token);
        var stream = tcp.GetStream();
        var request = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"{method} {target} HTTP/1.1\r\n")
            .Append(CultureInfo.InvariantCulture, $"Host: {server.Authority}\r\n")
            .Append("Connection: close\r\nContent-Length: 0\r\n");
        if (apiKey is not null)
            request.Append(CultureInfo.InvariantCulture, $"X-API-Key: {apiKey}\r\n");
        request.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), timeout.Token);

        using var received = new MemoryStream();
        await stream.CopyToAsync(received, timeout.Token);
        return Parse(received.ToArray());
    }

    private static Response Parse(byte[] bytes)
    {
        var split = bytes.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(split > 0, $"no HTTP response head in: {Encoding.UTF8.GetString(bytes)}");
        var lines = Encoding.ASCII.GetString(bytes, 0, split).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1)
            .Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
        var body = bytes.AsSpan(split + 4).ToArray();
        if (headers.TryGetValue("transfer-encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            body = Dechunk(body);
        return new Response(status, headers, Encoding.UTF8.GetString(body));
    }

    private static byte[] Dechunk(byte[] chunked)
    {
        using var body = new MemoryStream();
        var at = 0;
        while (true)
        {
            var lineEnd = at + chunked.AsSpan(at).IndexOf("\r\n"u8);
            var size = int.Parse(Encoding.ASCII.GetString(chunked, at, lineEnd - at).Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
                return body.ToArray();
            body.Write(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }
}
