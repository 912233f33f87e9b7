using System.Text;
using System.Text.Json.Nodes;
using KubeSim.Security;
using KubeSim.Store;
using Microsoft.AspNetCore.Http;

namespace KubeSim.Api;

/// <summary>What a resource URL names: /api/v1/namespaces/{ns}/{resource}/{name}/{subresource}.</summary>
internal sealed record ResourceRequest(ResourceType Type, string? Namespace, string? Name, string? Subresource);

/// <summary>
/// The one request entry point: unauthenticated endpoints (health, version), authentication, discovery,
/// OpenAPI, then resource URLs dispatched to <see cref="ResourceHandlers"/>. Every failure is answered
/// with a Status object and its HTTP code.
/// </summary>
internal sealed class KubeApi(Authenticator authenticator, ResourceHandlers handlers)
{
    public async Task HandleAsync(HttpContext ctx)
    {
        try
        {
            await DispatchAsync(ctx);
        }
        catch (KubeApiException e)
        {
            await WriteJsonAsync(ctx, e.Code, e.ToStatus());
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away (a watch was closed): nothing to answer.
        }
        catch (Exception e) when (!ctx.Response.HasStarted && e is FormatException or IndexOutOfRangeException or InvalidOperationException or ArgumentException or System.Text.Json.JsonException or YamlDotNet.Core.YamlException)
        {
            // Malformed input the handlers did not anticipate: still a Status, as the apiserver would answer.
            await WriteJsonAsync(ctx, 400, KubeApiException.BadRequest(e.Message).ToStatus());
        }
    }

    private async Task DispatchAsync(HttpContext ctx)
    {
        var path = (ctx.Request.Path.Value ?? "/").TrimEnd('/');
        switch (path)
        {
            case "/healthz" or "/livez" or "/readyz":
                ctx.Response.ContentType = "text/plain; charset=utf-8";
                await ctx.Response.WriteAsync("ok", ctx.RequestAborted);
                return;
            case "/version":
                await WriteJsonAsync(ctx, 200, Discovery.Version());
                return;
        }
        if (!authenticator.IsAuthenticated(ctx)) throw KubeApiException.Unauthorized();

        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        switch (segments)
        {
            case ["api"]:
                await WriteJsonAsync(ctx, 200, Discovery.CoreVersions($"{ctx.Request.Host.Host}:{ctx.Request.Host.Port}"));
                return;
            case ["apis"]:
                await WriteJsonAsync(ctx, 200, Discovery.Groups());
                return;
            case ["apis", var group]:
                await WriteJsonAsync(ctx, 200, Discovery.Group(group) ?? throw NotFound());
                return;
            case ["api", var version]:
                await WriteJsonAsync(ctx, 200, Discovery.Resources("", version) ?? throw NotFound());
                return;
            case ["apis", var group, var version]:
                await WriteJsonAsync(ctx, 200, Discovery.Resources(group, version) ?? throw NotFound());
                return;
            case ["openapi", ..]:
                await WriteJsonAsync(ctx, 200, OpenApi.Document(segments) ?? throw NotFound());
                return;
            case ["api", var version, .. var rest] when rest.Length > 0:
                await handlers.HandleAsync(ctx, Parse("", version, rest));
                return;
            case ["apis", var group, var version, .. var rest] when rest.Length > 0:
                await handlers.HandleAsync(ctx, Parse(group, version, rest));
                return;
            default:
                throw NotFound();
        }
    }

    private static ResourceRequest Parse(string group, string version, string[] rest)
    {
        string? ns = null;
        if (rest.Length >= 3 && rest[0] == "namespaces" && !(rest.Length == 3 && rest[2] == "status"))
        {
            ns = rest[1];
            rest = rest[2..];
        }
        if (rest.Length > 3) throw NotFound();
        var apiVersion = group.Length == 0 ? version : $"{group}/{version}";
        var type = ResourceTypes.Find(apiVersion, rest[0]) ?? throw NotFound();
        if (!type.Namespaced && ns is not null) throw NotFound();
        var sub = rest.Length > 2 ? rest[2] : null;
        var subOk = sub switch
        {
            null => true,
            "status" => type.HasStatus,
            "scale" => type.HasScale,
            "token" => type == ResourceTypes.ServiceAccounts,
            _ => false,
        };
        if (!subOk) throw NotFound();
        return new ResourceRequest(type, ns, rest.Length > 1 ? rest[1] : null, sub);
    }

    private static KubeApiException NotFound() => KubeApiException.NotFoundPath("the server could not find the requested resource");

    public static async Task WriteJsonAsync(HttpContext ctx, int code, JsonNode body)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(body.ToJsonString()), ctx.RequestAborted);
    }
}
