using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using BadHttpRequestException = Microsoft.AspNetCore.Http.BadHttpRequestException;
using Microsoft.Extensions.Options;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Http;

/// <summary>JSON conventions, problem+json errors, body size limit, request ids, OpenAPI and the docs page.</summary>
internal static partial class HttpSurface
{
    public const string BodyTooLarge = "the request body is larger than the limit (Http:MaxRequestBodyBytes)";

    public static void AddHttpSurface(this WebApplicationBuilder builder)
    {
        builder.Services.ConfigureHttpJsonOptions(o => Configure(o.SerializerOptions));
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<HttpOptions>>((kestrel, http) =>
        {
            kestrel.Limits.MaxRequestBodySize = http.Value.MaxRequestBodyBytes;
            kestrel.AddServerHeader = false;
        });
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = c =>
        {
            c.ProblemDetails.Extensions["request_id"] = c.HttpContext.TraceIdentifier;
            c.ProblemDetails.Instance ??= c.HttpContext.Request.Path;
            // Minimal APIs answer an oversized body with a bare 413 (no exception reaches the handler); say which limit.
            if (c.ProblemDetails.Status == StatusCodes.Status413PayloadTooLarge)
                c.ProblemDetails.Detail ??= BodyTooLarge;
        });
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer<OpenApiSecurity>());
    }

    /// <summary>snake_case names, unknown fields refused, nullability respected: bad bodies are 400s that name the field.</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.RespectNullableAnnotations = true;
        options.RespectRequiredConstructorParameters = true;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
    }

    public static void UseHttpSurface(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.Use((context, next) =>
        {
            context.Response.Headers["X-Request-Id"] = context.TraceIdentifier;
            return next(context);
        });
    }

    public static void MapDocs(this WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous().ExcludeFromDescription();
        app.UseSwaggerUI(o =>
        {
            o.RoutePrefix = "api/v1/docs";
            o.SwaggerEndpoint("/openapi/v1.json", "Opsgate API v1");
            o.DocumentTitle = "Opsgate API";
        });
        app.MapGet("/", () => Results.Redirect("/api/v1/docs/")).AllowAnonymous().ExcludeFromDescription();
    }
}

/// <summary>
/// Turns exceptions into problem+json: unreadable or oversized bodies are the client's 4xx with the
/// parser's words (which name the JSON path), an unwritable audit log is a 503, anything else a 500
/// without internals. Mutating requests that fail here are audited as errors.
/// </summary>
internal sealed partial class ProblemExceptionHandler(ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, title, detail) = exception switch
        {
            BadHttpRequestException bad => (bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request body too large" : "Bad request", Describe(bad)),
            AuditUnavailableException => (StatusCodes.Status503ServiceUnavailable, "Audit log unavailable", "the audit log could not be written, so the request was not confirmed; try again"),
            OperationCanceledException when context.RequestAborted.IsCancellationRequested => (499, "Client closed request", null),
            _ => (StatusCodes.Status500InternalServerError, "Internal error", $"an unexpected error occurred; quote request id {context.TraceIdentifier} when reporting it"),
        };
        if (status >= 500)
            LogUnhandled(logger, context.TraceIdentifier, exception);
        if (context.Response.HasStarted)
            return true;
        if (context.Request.IsMutating() && exception is not AuditUnavailableException)
        {
            try
            {
                // The exception middleware has cleared the endpoint by now; the feature keeps the one that failed.
                var endpoint = context.Features.Get<IExceptionHandlerFeature>()?.Endpoint;
                await context.WriteAuditAsync(AuditStatus.Error, status, detail ?? title, endpoint);
            }
            catch (AuditUnavailableException)
            {
                (status, title, detail) = (StatusCodes.Status503ServiceUnavailable, "Audit log unavailable", "the audit log could not be written");
            }
        }
        await Problems.WriteAsync(context, status, title, detail);
        return true;
    }

    private static string Describe(BadHttpRequestException bad)
    {
        if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            return HttpSurface.BodyTooLarge;
        // Minimal APIs wrap the serializer's JsonException, whose message names the path ($.field) and position.
        for (Exception? e = bad; e is not null; e = e.InnerException)
        {
            if (e is JsonException json)
                return DescribeJson(json);
        }
        return bad.Message;
    }

    /// <summary>The serializer's message, reworded for API users: the JSON path first, no .NET type names.</summary>
    internal static string DescribeJson(JsonException json)
    {
        var path = json.Path is { Length: > 0 } p && p != "$" ? p : null;
        var message = json.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            var field = QuotedName().Match(message) is { Success: true } m ? m.Groups[1].Value : "?";
            return $"$.{field}: unknown field";
        }
        if (MissingRequired().Match(message) is { Success: true } missing)
            return $"missing required field(s): {missing.Groups[1].Value}";
        if (path is not null && message.Contains("could not be converted", StringComparison.Ordinal))
            return $"{path}: has the wrong type";
        if (path is not null && message.Contains("null value", StringComparison.OrdinalIgnoreCase))
            return $"{path}: must not be null";
        var position = json.LineNumber is { } line ? $" (line {line + 1}, byte {json.BytePositionInLine + 1})" : "";
        return $"the body is not valid JSON{position}";
    }

    [System.Text.RegularExpressions.GeneratedRegex("property '([^']*)'")]
    private static partial System.Text.RegularExpressions.Regex QuotedName();

    [System.Text.RegularExpressions.GeneratedRegex("missing required properties including: (.*)\\.$")]
    private static partial System.Text.RegularExpressions.Regex MissingRequired();

    [LoggerMessage(EventId = 300, Level = LogLevel.Error, Message = "Unhandled error in request {RequestId}")]
    private static partial void LogUnhandled(ILogger logger, string requestId, Exception exception);
}
