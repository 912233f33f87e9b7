using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Opsgate.Bench;

internal sealed record AuditVerify(bool Ok, long Entries, string? Reason);

/// <summary>
/// The requests the benchmark makes against one Opsgate server. Every response status is checked;
/// anything but the expected one is recorded as an error with the first one's description kept.
/// </summary>
/// <param name="http">The one client all load goes through.</param>
/// <param name="slow">The same connection pool with a longer time-out, for the checks between runs.</param>
internal sealed class Scenarios(HttpClient http, HttpClient slow, Uri baseAddress, string adminKey)
{
    public const int Create = 0;
    public const int Revoke = 1;

    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly Uri _live = new(baseAddress, "health/live");
    private readonly Uri _auditLatest = new(baseAddress, "api/v1/audit?limit=1");
    private readonly Uri _verify = new(baseAddress, "api/v1/audit/verify");
    private readonly Uri _keys = new(baseAddress, "api/v1/apikeys");
    private long _keyCounter;
    private long _mutationsSent;

    /// <summary>Mutating requests sent so far (warm-up included): each should have added exactly one audit entry.</summary>
    public long MutationsSent => Interlocked.Read(ref _mutationsSent);

    /// <summary>Baseline: no authentication, no database; what the HTTP stack and this client cost on their own.</summary>
    public Task Baseline(Worker w, CancellationToken ct) => GetAsync(w, _live, authenticated: false, ct);

    /// <summary>An authenticated read that reaches the database: the newest audit entry.</summary>
    public Task Read(Worker w, CancellationToken ct) => GetAsync(w, _auditLatest, authenticated: true, ct);

    /// <summary>Two audited mutations: create a viewer key, then revoke it. Each request is recorded (and counted) on its own.</summary>
    public async Task Mutate(Worker w, CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _keyCounter);
        var body = Encoding.UTF8.GetBytes($$"""{"name":"bench-{{n.ToString(CultureInfo.InvariantCulture)}}","role":"viewer"}""");
        string? id = null;
        var started = Stopwatch.GetTimestamp();
        string? error;
        try
        {
            using var request = Authenticated(HttpMethod.Post, _keys);
            request.Content = new ByteArrayContent(body) { Headers = { ContentType = Json } };
            Interlocked.Increment(ref _mutationsSent);
            using var response = await http.SendAsync(request, ct);
            var content = await response.Content.ReadAsByteArrayAsync(ct);
            error = Unexpected(response, HttpStatusCode.Created);
            if (error is null)
                id = ReadId(content);
            if (error is null && id is null)
                error = "POST /api/v1/apikeys: 201 without an id";
        }
        catch (Exception e) when (IsRequestFailure(e, ct))
        {
            error = $"POST /api/v1/apikeys: {e.GetType().Name}: {e.Message}";
        }
        w.Record(Create, started, error);
        if (id is null)
            return;

        started = Stopwatch.GetTimestamp();
        try
        {
            using var request = Authenticated(HttpMethod.Delete, new Uri(_keys + "/" + Uri.EscapeDataString(id)));
            Interlocked.Increment(ref _mutationsSent);
            using var response = await http.SendAsync(request, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            error = Unexpected(response, HttpStatusCode.NoContent);
        }
        catch (Exception e) when (IsRequestFailure(e, ct))
        {
            error = $"DELETE /api/v1/apikeys/{id}: {e.GetType().Name}: {e.Message}";
        }
        w.Record(Revoke, started, error);
    }

    /// <summary>The id of the newest audit entry (0 for an empty log).</summary>
    public async Task<long> LatestAuditIdAsync(CancellationToken ct)
    {
        using var request = Authenticated(HttpMethod.Get, _auditLatest);
        using var response = await slow.SendAsync(request, ct);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new BenchException($"GET /api/v1/audit?limit=1 answered {(int)response.StatusCode}; was the admin key accepted?");
        using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
        var items = doc.RootElement.GetProperty("items");
        return items.GetArrayLength() == 0 ? 0 : items[0].GetProperty("id").GetInt64();
    }

    public async Task<AuditVerify> VerifyAsync(CancellationToken ct)
    {
        using var request = Authenticated(HttpMethod.Get, _verify);
        using var response = await slow.SendAsync(request, ct);
        var content = await response.Content.ReadAsByteArrayAsync(ct);
        if (response.StatusCode != HttpStatusCode.OK)
            return new AuditVerify(false, 0, $"GET /api/v1/audit/verify answered {(int)response.StatusCode}");
        using var doc = JsonDocument.Parse(content);
        var root = doc.RootElement;
        return new AuditVerify(
            root.GetProperty("ok").GetBoolean(),
            root.GetProperty("entries").GetInt64(),
            root.TryGetProperty("reason", out var reason) && reason.ValueKind == JsonValueKind.String ? reason.GetString() : null);
    }

    private async Task GetAsync(Worker w, Uri uri, bool authenticated, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        string? error;
        try
        {
            using var request = authenticated ? Authenticated(HttpMethod.Get, uri) : new HttpRequestMessage(HttpMethod.Get, uri);
            using var response = await http.SendAsync(request, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            error = Unexpected(response, HttpStatusCode.OK);
        }
        catch (Exception e) when (IsRequestFailure(e, ct))
        {
            error = $"GET {uri.PathAndQuery}: {e.GetType().Name}: {e.Message}";
        }
        w.Record(0, started, error);
    }

    /// <summary>
    /// Sends one request made by <paramref name="request"/> and records it as <paramref name="kind"/>: an error unless it
    /// answers <paramref name="expected"/>. Returns the body of an expected answer (null otherwise).
    /// </summary>
    public async Task<byte[]?> SendAsync(Worker w, int kind, Func<HttpRequestMessage> request, HttpStatusCode expected, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        string? error;
        byte[]? content = null;
        using var message = request();
        var what = $"{message.Method} {message.RequestUri?.AbsolutePath}";
        try
        {
            using var response = await http.SendAsync(message, ct);
            content = await response.Content.ReadAsByteArrayAsync(ct);
            error = Unexpected(response, expected);
        }
        catch (Exception e) when (IsRequestFailure(e, ct))
        {
            error = $"{what}: {e.GetType().Name}: {e.Message}";
        }
        w.Record(kind, started, error);
        return error is null ? content : null;
    }

    /// <summary>A JSON request with the admin key.</summary>
    public HttpRequestMessage AuthenticatedJson(HttpMethod method, Uri uri, byte[] body)
    {
        var request = Authenticated(method, uri);
        request.Content = new ByteArrayContent(body) { Headers = { ContentType = Json } };
        return request;
    }

    public HttpRequestMessage Authenticated(HttpMethod method, Uri uri)
    {
        var request = new HttpRequestMessage(method, uri);
        request.Headers.Add("X-API-Key", adminKey);
        return request;
    }

    private static string? Unexpected(HttpResponseMessage response, HttpStatusCode expected) =>
        response.StatusCode == expected
            ? null
            : $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath}: {(int)response.StatusCode}, expected {(int)expected}";

    /// <summary>Transport failures and client time-outs count as errors; our own cancellation (Ctrl-C) does not.</summary>
    private static bool IsRequestFailure(Exception e, CancellationToken ct) =>
        e is HttpRequestException or IOException or JsonException || (e is OperationCanceledException && !ct.IsCancellationRequested);

    private static string? ReadId(byte[] content)
    {
        using var doc = JsonDocument.Parse(content);
        return doc.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
    }
}
