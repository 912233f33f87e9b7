using System.ComponentModel;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine.Notifications;

namespace Opsgate.Server.Engine.Steps;

/// <summary>
/// <c>http.call</c>: one HTTP request; its status and body become outputs for later steps. A status other than
/// <c>expect_status</c> (default: any 2xx) fails the step: 408, 429, 5xx and no answer at all are retried per the step's
/// <c>attempts</c>, anything else is final. Redirects are not followed (a 3xx is the answer). A dry run sends nothing
/// and its outputs are null, so later steps still render.
/// </summary>
internal sealed class HttpCallStep(IHttpClientFactory http) : StepExecutor<HttpCallStep.With>
{
    internal sealed record With(
        [Description("http or https URL")] string Url,
        [Description("GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS")] string? Method,
        [Description("request headers, name: value")] JsonObject? Headers,
        [Description("request body: a string is sent as text/plain, anything else as JSON")] JsonNode? Body,
        [Description("the status that counts as success (default: any 2xx)")] int? ExpectStatus);

    public const int MaxBodyBytes = 64 * 1024;
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    private static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

    public override string Kind => "http.call";
    public override string Description => "Send an HTTP request; outputs status and body.";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken ct)
    {
        var url = StepUrls.Parse(with.Url);
        var method = (with.Method ?? "GET").ToUpperInvariant();
        if (!Methods.Contains(method, StringComparer.Ordinal))
            throw new StepFailedException($"method must be one of {string.Join(", ", Methods)}, not '{method}'");
        var expect = with.ExpectStatus;
        if (expect is < 100 or > 599)
            throw new StepFailedException($"expect_status must be an HTTP status between 100 and 599, not {expect}");
        var headers = Headers(with.Headers);
        var body = Body(with.Body, headers);
        var target = $"{method} {StepUrls.Describe(url)}";
        var expected = expect?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "2xx";
        if (context.DryRun)
        {
            var sending = body is null ? "no body" : $"a {body.Value.Bytes.Length}-byte {body.Value.ContentType} body";
            return new StepOutcome($"would send {target} with {sending} and {headers.Count} header(s), expecting {expected}",
                new JsonObject { ["status"] = null, ["body"] = null });
        }

        using var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (body is { } b)
        {
            request.Content = new ByteArrayContent(b.Bytes);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(b.ContentType);
        }
        foreach (var (name, value) in headers)
        {
            if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                continue; // already on the content, which is where it belongs
            if (!request.Headers.TryAddWithoutValidation(name, value) && request.Content?.Headers.TryAddWithoutValidation(name, value) != true)
                throw new StepFailedException($"headers.{name} cannot be set on a request{(request.Content is null ? " without a body" : "")}");
        }
        var (status, reason, mediaType, bytes, truncated) = await HttpDelivery.SendAsync(http.CreateClient(HttpDelivery.ClientName), request, RequestTimeout,
            async (response, token) =>
            {
                var (read, cut) = await HttpDelivery.ReadAsync(response, MaxBodyBytes, token);
                return ((int)response.StatusCode, response.ReasonPhrase, response.Content.Headers.ContentType?.MediaType, read, cut);
            }, ct);

        if (expect is { } e ? status != e : status is < 200 or > 299)
        {
            var text = Encoding.UTF8.GetString(bytes.AsSpan(0, Math.Min(bytes.Length, 200)));
            var message = $"{target} answered {status} {reason}, expected {expected}{(text.Length > 0 ? ": " + text : "")}";
            throw HttpDelivery.IsRetryable(status) ? new DeliveryException(message, retryable: true) : new StepFailedException(message);
        }
        return new StepOutcome($"{target} answered {status} {reason}{(truncated ? $" (body cut to {MaxBodyBytes / 1024} KiB)" : "")}",
            new JsonObject { ["status"] = status, ["body"] = Output(bytes, truncated, mediaType) });
    }

    private static List<(string Name, string Value)> Headers(JsonObject? headers)
    {
        var list = new List<(string, string)>();
        foreach (var (name, value) in headers ?? [])
        {
            if (name.Length == 0 || !name.All(c => c > ' ' && c < 127 && !"()<>@,;:\\\"/[]?={}".Contains(c, StringComparison.Ordinal)))
                throw new StepFailedException($"headers: '{name}' is not a valid header name");
            if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                throw new StepFailedException($"headers.{name} must be a string");
            var text = v.GetValue<string>();
            if (text.Any(c => c is '\r' or '\n'))
                throw new StepFailedException($"headers.{name} must be one line");
            list.Add((name, text));
        }
        return list;
    }

    /// <summary>The body's bytes and content type: a Content-Type header wins; else text/plain for a string, JSON for anything else.</summary>
    private static (byte[] Bytes, string ContentType)? Body(JsonNode? body, List<(string Name, string Value)> headers)
    {
        if (body is null)
            return null;
        var isText = body.GetValueKind() == JsonValueKind.String;
        var bytes = Encoding.UTF8.GetBytes(isText ? body.GetValue<string>() : body.ToJsonString());
        var given = headers.FirstOrDefault(h => h.Name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)).Value;
        if (given is not null && !MediaTypeHeaderValue.TryParse(given, out _))
            throw new StepFailedException($"headers.Content-Type: '{given}' is not a media type");
        return (bytes, given ?? (isText ? "text/plain; charset=utf-8" : "application/json; charset=utf-8"));
    }

    /// <summary>JSON when the server says it is JSON (and all of it was read), else text.</summary>
    private static JsonNode? Output(byte[] bytes, bool truncated, string? mediaType)
    {
        if (!truncated && bytes.Length > 0 && mediaType is { } type
            && (type.Equals("application/json", StringComparison.OrdinalIgnoreCase) || type.EndsWith("+json", StringComparison.OrdinalIgnoreCase)))
        {
            try
            {
                return JsonNode.Parse(bytes);
            }
            catch (JsonException)
            {
                // Says JSON, is not: the text is still useful.
            }
        }
        return JsonValue.Create(Encoding.UTF8.GetString(bytes));
    }
}

/// <summary><c>notify.webhook</c>: posts a runbook's message to a webhook in one of the notification formats, by the same code as job notifications.</summary>
internal sealed class NotifyWebhookStep(IHttpClientFactory http, IOptions<NotificationsOptions> options) : StepExecutor<NotifyWebhookStep.With>
{
    internal sealed record With(
        [Description("the webhook's http or https URL")] string Url,
        [Description("generic (default), slack, teams or zulip (its Slack-compatible incoming webhook)")] string? Format,
        [Description("the text to post")] string Message);

    public override string Kind => "notify.webhook";
    public override string Description => "Post a message to a webhook (generic, slack, teams or zulip).";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken ct)
    {
        var url = StepUrls.Parse(with.Url);
        var formatName = with.Format ?? "generic";
        var format = WebhookFormats.Parse(formatName) ?? throw new StepFailedException($"format must be generic, slack, teams or zulip, not '{formatName}'");
        var message = with.Message;
        // Only the origin: the path and query of a webhook URL are its credential.
        var where = $"a {format.Name()} message to {HttpDelivery.Origin(url)}";
        if (context.DryRun)
            return new StepOutcome($"would post {where}");
        var payload = WebhookPayloads.ForMessage(format, message, context.JobId, context.StepName);
        try
        {
            await HttpDelivery.PostAsync(http.CreateClient(HttpDelivery.ClientName), url, payload, secret: null,
                $"{context.JobId}-{context.StepOrder}", options.Value.Timeout, ct);
        }
        catch (DeliveryException e) when (!e.Retryable)
        {
            throw new StepFailedException(e.Message, e);
        }
        return new StepOutcome($"posted {where}");
    }
}

internal static class StepUrls
{
    public static Uri Parse(string url) => HttpDelivery.TryParse(url, out var uri) ? uri : throw new StepFailedException("url must be an absolute http or https URL");

    /// <summary>Without the query, which may carry a token.</summary>
    public static string Describe(Uri url) => HttpDelivery.Origin(url) + url.AbsolutePath;
}
