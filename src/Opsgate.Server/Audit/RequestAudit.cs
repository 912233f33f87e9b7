using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Observability;

namespace Opsgate.Server.Audit;

/// <summary>Marks an endpoint as audited with an action name (e.g. <c>apikey.create</c>) and resource kind.</summary>
internal sealed record AuditedAttribute(string Action, string ResourceKind);

/// <summary>
/// What a handler tells the audit log about its request: the resource it acted on, the (redacted) body,
/// a dry-run flag, a job id. Lives in the request's features; <see cref="AuditFilter"/> and the error and
/// denial paths turn it into the entry.
/// </summary>
internal sealed partial class RequestAudit
{
    public string? Namespace { get; set; }
    public string? ResourceName { get; set; }
    public string? RequestBody { get; private set; }
    public bool DryRun { get; set; }
    public string? JobId { get; set; }
    public string? Cluster { get; set; }
    /// <summary>What the entry says went wrong, instead of the response's detail (which may quote input that must not be logged).</summary>
    public string? Error { get; set; }
    internal bool Written { get; set; }

    /// <summary>A body the server composed itself from values it chose to keep (nothing in it is redacted).</summary>
    public void SetServerBody(string? json) => RequestBody = json;

    /// <summary>Records the request body with every secret-looking field replaced by <c>[REDACTED]</c>.</summary>
    public void SetBody<T>(T body, JsonSerializerOptions options)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(body, options);
        if (!HasSecretName(json))
        {
            RequestBody = Encoding.UTF8.GetString(json);
            return;
        }
        var node = JsonNode.Parse(json);
        Redact(node);
        RequestBody = node?.ToJsonString();
    }

    /// <summary>Most bodies hold nothing to redact; a scan of their property names tells without building a document.</summary>
    private static bool HasSecretName(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && SecretName().IsMatch(reader.GetString()!))
                return true;
        }
        return false;
    }

    private static void Redact(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var name in obj.Select(p => p.Key).ToList())
                {
                    if (SecretName().IsMatch(name))
                        obj[name] = "[REDACTED]";
                    else
                        Redact(obj[name]);
                }
                break;
            case JsonArray array:
                foreach (var item in array)
                    Redact(item);
                break;
        }
    }

    [GeneratedRegex("(^|_|-)(key|token|password|passwd|secret|kubeconfig|credentials?|private|authorization)($|_|-)|apikey|api_key", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();
}

internal static class RequestAuditExtensions
{
    public static RequestAudit Audit(this HttpContext context)
    {
        var audit = context.Features.Get<RequestAudit>();
        if (audit is null)
        {
            audit = new RequestAudit();
            context.Features.Set(audit);
        }
        return audit;
    }

    public static void SetAuditBody<T>(this HttpContext context, T body) =>
        context.Audit().SetBody(body, context.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions);

    /// <summary>Writes the request's audit entry (once) and waits until it is committed.</summary>
    public static async Task WriteAuditAsync(this HttpContext context, string status, int httpStatus, string? error, Endpoint? endpoint = null)
    {
        var audit = context.Audit();
        if (audit.Written)
            return;
        audit.Written = true;
        var principal = context.Principal();
        endpoint ??= context.GetEndpoint();
        var audited = endpoint?.Metadata.GetMetadata<AuditedAttribute>();
        var route = (endpoint as RouteEndpoint)?.RoutePattern.RawText ?? context.Request.Path.ToString();
        var entry = new AuditEntry
        {
            Actor = principal?.Name ?? "anonymous",
            SourceIp = context.Connection.RemoteIpAddress?.ToString(),
            Action = audited?.Action ?? $"{context.Request.Method} {route}",
            ResourceKind = audited?.ResourceKind,
            Namespace = audit.Namespace,
            ResourceName = audit.ResourceName,
            RequestBody = audit.RequestBody,
            Status = status,
            HttpStatus = httpStatus,
            ErrorMessage = audit.Error ?? error, // a handler's own wording wins: it may keep quoted input out of the log
            PrincipalId = principal?.Id,
            AuthMethod = principal?.AuthMethod,
            RequestId = context.TraceIdentifier,
            DryRun = audit.DryRun,
            JobId = audit.JobId,
            Cluster = audit.Cluster,
        };
        var queued = Stopwatch.GetTimestamp();
        try
        {
            await context.RequestServices.GetRequiredService<AuditWriter>().AppendAsync(entry);
        }
        finally
        {
            // Failed commits too: a slow or broken audit log is what this measurement is for.
            context.RequestServices.GetRequiredService<OpsgateMetrics>().AuditWait(Stopwatch.GetElapsedTime(queued));
        }
    }

    /// <summary>Writes a refusal's entry; the refusal stands even when the audit log cannot take it.</summary>
    public static async Task TryWriteAuditAsync(this HttpContext context, string status, int httpStatus, string? error)
    {
        try
        {
            await context.WriteAuditAsync(status, httpStatus, error);
        }
        catch (AuditUnavailableException)
        {
            // The writer already logged why the audit log is unavailable.
        }
    }

    public static bool IsMutating(this HttpRequest request) =>
        !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method));

    /// <summary>Audits every call of the endpoint: the entry is committed after the handler ran and before the response is written.</summary>
    public static RouteHandlerBuilder Audited(this RouteHandlerBuilder builder, string action, string resourceKind) =>
        builder.WithMetadata(new AuditedAttribute(action, resourceKind)).AddEndpointFilter<AuditFilter>();
}

internal sealed class AuditFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var result = await next(context);
        // Typed unions (Results<A, B>) wrap the result that actually runs.
        while (result is INestedHttpResult nested)
            result = nested.Result;
        var status = result is IStatusCodeHttpResult { StatusCode: { } code } ? code : StatusCodes.Status200OK;
        var error = status >= 400 && result is IValueHttpResult { Value: Microsoft.AspNetCore.Mvc.ProblemDetails problem } ? problem.Detail ?? problem.Title : null;
        var outcome = status switch
        {
            < 400 => AuditStatus.Success,
            401 or 403 => AuditStatus.Denied,
            _ => AuditStatus.Error,
        };
        await context.HttpContext.WriteAuditAsync(outcome, status, error);
        return result;
    }
}
