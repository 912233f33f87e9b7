using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>
/// A loopback HTTP server whose every answer a test scripts: the handler gets the request and how many
/// requests came before it (so "503 twice, then 200" is one line). Requests are counted as they arrive.
/// </summary>
public sealed class StubHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;

    private StubHttpServer(WebApplication app) => _app = app;

    public Uri BaseAddress => new(_app.ListeningAddresses().First());

    /// <summary>Requests received so far, whatever their answer.</summary>
    public int Requests => Volatile.Read(ref _requests);

    public static async Task<StubHttpServer> StartAsync(Func<HttpContext, int, Task> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new StubHttpServer(app);
        app.Run(ctx => handler(ctx, Interlocked.Increment(ref server._requests) - 1));
        await app.StartAsync();
        return server;
    }

    /// <summary>Answers with a Kubernetes <c>Status</c> document, as an apiserver (or a proxy in front of one) would.</summary>
    public static Task StatusAsync(HttpContext ctx, int code, string reason, string message)
    {
        ctx.Response.StatusCode = code;
        return ctx.Response.WriteAsJsonAsync(new Dictionary<string, object>
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
