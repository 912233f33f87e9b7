using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>
/// A loopback HTTP receiver that records every request (method, path and query, headers, body) before answering
/// it as the test scripts (default 200 with no body); tests wait for requests to arrive instead of sleeping.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly ConcurrentQueue<ReceivedRequest> _received = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private StubHttpServer _server = null!;

    private WebhookReceiver()
    {
    }

    public IReadOnlyList<ReceivedRequest> Requests => _received.ToArray();

    /// <param name="answer">Gets the request and how many came before it; sets the response. Null: 200, empty.</param>
    public static async Task<WebhookReceiver> StartAsync(Func<HttpContext, int, Task>? answer = null)
    {
        var receiver = new WebhookReceiver();
        receiver._server = await StubHttpServer.StartAsync(async (ctx, n) =>
        {
            using var body = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(body);
            var headers = ctx.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
            receiver._received.Enqueue(new ReceivedRequest(ctx.Request.Method, ctx.Request.Path + ctx.Request.QueryString, headers, body.ToArray()));
            receiver._arrived.Release();
            if (answer is not null)
                await answer(ctx, n);
        });
        return receiver;
    }

    /// <summary>Answers with <paramref name="statuses"/> in turn, then the last one for ever.</summary>
    public static Func<HttpContext, int, Task> Statuses(params int[] statuses) => (ctx, n) =>
    {
        ctx.Response.StatusCode = statuses[Math.Min(n, statuses.Length - 1)];
        return Task.CompletedTask;
    };

    public string Url(string pathAndQuery = "/hook") => new Uri(_server.BaseAddress, pathAndQuery).ToString();

    /// <summary>Waits until at least <paramref name="count"/> requests arrived; fails after <paramref name="timeout"/> (default 15 s).</summary>
    public async Task<IReadOnlyList<ReceivedRequest>> WaitForAsync(int count, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(15);
        var watch = Stopwatch.StartNew();
        while (_received.Count < count)
        {
            var left = limit - watch.Elapsed;
            Assert.True(left > TimeSpan.Zero, $"expected {count} requests within {limit}, got {_received.Count}");
            await _arrived.WaitAsync(left);
        }
        return Requests;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _arrived.Dispose();
    }
}

public sealed record ReceivedRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);

    public JsonElement Json
    {
        get
        {
            using var doc = JsonDocument.Parse(Body);
            return doc.RootElement.Clone();
        }
    }

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}
