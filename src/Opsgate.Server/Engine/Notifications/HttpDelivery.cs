using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Opsgate.Server.Engine.Notifications;

/// <summary>An outbound request did not get the answer it needed. <see cref="Retryable"/>: another attempt may succeed.</summary>
internal sealed class DeliveryException(string message, bool retryable, Exception? inner = null) : Exception(message, inner)
{
    public bool Retryable { get; } = retryable;
}

/// <summary>
/// The outbound HTTP both the job notifications and the <c>http.call</c> / <c>notify.webhook</c> steps use: one attempt
/// under a timeout that covers reading the answer too, and errors that say what happened without the URL's path or
/// query, which for webhooks are the credential (Slack's path, Zulip's <c>api_key</c>).
/// </summary>
internal static class HttpDelivery
{
    /// <summary>The named client: no redirects (a webhook POST that is redirected arrives as a GET, if at all) and no request logging (it would log URLs).</summary>
    public const string ClientName = "opsgate.outbound";

    public static bool IsHttp(string? url) => TryParse(url, out _);

    public static bool TryParse(string? url, out Uri uri) =>
        Uri.TryCreate(url, UriKind.Absolute, out uri!) && uri.Scheme is "http" or "https" && uri.Host.Length > 0;

    /// <summary>408, 429 and 5xx may go away; other answers will not change on their own.</summary>
    public static bool IsRetryable(int status) => status is 408 or 429 or >= 500;

    /// <summary>scheme://host:port, safe to show.</summary>
    public static string Origin(Uri url) => url.IsDefaultPort ? $"{url.Scheme}://{url.Host}" : $"{url.Scheme}://{url.Host}:{url.Port}";

    /// <summary>Sends <paramref name="request"/> and runs <paramref name="read"/> on the answer, both within <paramref name="timeout"/>.</summary>
    /// <exception cref="DeliveryException">No answer: retryable.</exception>
    public static async Task<T> SendAsync<T>(HttpClient client, HttpRequestMessage request, TimeSpan timeout,
        Func<HttpResponseMessage, CancellationToken, Task<T>> read, CancellationToken ct)
    {
        var url = request.RequestUri!;
        if (!request.Headers.Contains("User-Agent"))
            request.Headers.UserAgent.ParseAdd("opsgate");
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, limit.Token);
            return await read(response, limit.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new DeliveryException($"{Origin(url)} did not answer within {timeout.TotalSeconds:0.###} s", retryable: true);
        }
        catch (HttpRequestException e)
        {
            throw new DeliveryException($"could not reach {Origin(url)}: {Redact(e.Message, url)}", retryable: true, e);
        }
        catch (IOException e)
        {
            throw new DeliveryException($"the connection to {Origin(url)} broke: {Redact(e.Message, url)}", retryable: true, e);
        }
    }

    /// <summary>Reads at most <paramref name="max"/> bytes of the body; <c>Truncated</c> when there was more.</summary>
    public static async Task<(byte[] Bytes, bool Truncated)> ReadAsync(HttpResponseMessage response, int max, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[max + 1];
        var read = 0;
        while (read < buffer.Length && await stream.ReadAsync(buffer.AsMemory(read), ct) is var n and > 0)
            read += n;
        return read > max ? (buffer[..max], true) : (buffer[..read], false);
    }

    /// <summary>"500 Internal Server Error: first line of the body", short enough for an error message.</summary>
    public static async Task<string> DescribeAnswerAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var (bytes, _) = await ReadAsync(response, 200, ct);
        var text = new string(Encoding.UTF8.GetString(bytes).Where(c => !char.IsControl(c)).ToArray()).Trim();
        var status = $"{(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd();
        return text.Length == 0 ? status : $"{status}: {text}";
    }

    public static string Signature(byte[] secret, byte[] body) => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, body));

    /// <summary>Posts a webhook payload once; signed when there is a secret.</summary>
    /// <exception cref="DeliveryException">Not delivered; retryable unless the receiver refused it for good.</exception>
    public static async Task PostAsync(HttpClient client, Uri url, WebhookPayload payload, byte[]? secret, string deliveryId, TimeSpan timeout, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(payload.Body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add("X-Opsgate-Event", payload.Event);
        // The same id on every attempt, so a receiver can drop a repeat whose earlier answer was lost.
        request.Headers.Add("X-Opsgate-Delivery", deliveryId);
        if (secret is not null)
            request.Headers.Add("X-Opsgate-Signature", Signature(secret, payload.Body));
        var refused = await SendAsync<(int Status, string Answer)?>(client, request, timeout, async (response, token) =>
            response.IsSuccessStatusCode ? null : ((int)response.StatusCode, await DescribeAnswerAsync(response, token)), ct);
        if (refused is { } r)
            throw new DeliveryException($"{Origin(url)} answered {Redact(r.Answer, url)}", IsRetryable(r.Status));
    }

    private static string Redact(string message, Uri url)
    {
        foreach (var secretPart in new[] { url.OriginalString, url.AbsoluteUri, url.PathAndQuery })
        {
            if (secretPart.Length > 1)
                message = message.Replace(secretPart, Origin(url) + "/…", StringComparison.Ordinal);
        }
        return message;
    }
}
