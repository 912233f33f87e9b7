using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;
using BadHttpRequestException = Microsoft.AspNetCore.Http.BadHttpRequestException;

namespace Opsgate.Server.Api;

/// <summary>JSON conventions, problem+json errors, body size limit, request ids, OpenAPI and the docs page.</summary>
internal static partial class HttpSurface
{
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
        });
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer<OpenApiSecurity>().AddOperationTransformer<Access.AccessRuleTransformer>());
    }

    /// <summary>snake_case names, unknown fields refused, nullability respected: bad bodies are 400s that name the field.</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.RespectNullableAnnotations = true;
        options.RespectRequiredConstructorParameters = true;
        // A repeated field would leave it to the parser which value wins; say so instead of guessing.
        options.AllowDuplicateProperties = false;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
    }

    public static void UseHttpSurface(this WebApplication app)
    {
        var limits = app.Services.GetRequiredService<IOptions<HttpOptions>>();
        app.UseExceptionHandler();
        app.UseWebSockets();
        app.UseStatusCodePages(status => AnswerEmptyErrorAsync(status.HttpContext, limits.Value));
        app.Use((context, next) =>
        {
            context.Response.Headers["X-Request-Id"] = context.TraceIdentifier;
            return next(context);
        });
        // The docs page is served before authentication: a browser opening / cannot send an API key, the page
        // holds no data, the document it loads is anonymous too, and the calls made from it carry the key typed in.
        app.UseSwaggerUI(o =>
        {
            o.RoutePrefix = "api/v1/docs";
            o.SwaggerEndpoint("/openapi/v1.json", "Opsgate API v1");
            o.DocumentTitle = "Opsgate API";
        });
    }

    /// <summary>
    /// Errors the framework answers without a body (no route, wrong method, body too large when read,
    /// Content-Type the endpoint does not accept) get a problem document that says what to change; a
    /// mutating request refused this way is audited as an error like any other.
    /// </summary>
    private static async Task AnswerEmptyErrorAsync(HttpContext context, HttpOptions limits)
    {
        var status = context.Response.StatusCode;
        var detail = Problems.DescribeStatus(context, status, limits);
        var title = ReasonPhrases.GetReasonPhrase(status);
        if (context.Request.IsMutating() && status >= 400)
        {
            try
            {
                await context.WriteAuditAsync(AuditStatus.Error, status, detail ?? title);
            }
            catch (AuditUnavailableException)
            {
                (status, title, detail) = (StatusCodes.Status503ServiceUnavailable, "Audit log unavailable", "the audit log could not be written");
            }
        }
        await Problems.WriteAsync(context, status, title, detail);
    }

    /// <summary>The OpenAPI document and the health routes.</summary>
    public static void MapHttpSurface(this WebApplication app)
    {
        app.MapHealthApi();
        app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous().ExcludeFromDescription();
    }
}

/// <summary>
/// Turns exceptions into problem+json: unreadable or oversized bodies and unbindable parameters are the
/// client's 4xx in plain words that name the JSON path or parameter, an unwritable audit log is a 503,
/// anything else a 500 without internals. Mutating requests that fail here are audited as errors.
/// </summary>
internal sealed partial class ProblemExceptionHandler(ILogger<ProblemExceptionHandler> logger, IOptions<HttpOptions> limits) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, title, detail) = exception switch
        {
            BadHttpRequestException bad => (bad.StatusCode, ReasonPhrases.GetReasonPhrase(bad.StatusCode), Describe(context, bad)),
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

    private string Describe(HttpContext context, BadHttpRequestException bad)
    {
        if (Problems.DescribeStatus(context, bad.StatusCode, limits.Value) is { } described)
            return described;
        // Minimal APIs wrap the serializer's JsonException, whose message names the path ($.field) and position.
        for (Exception? e = bad; e is not null; e = e.InnerException)
        {
            if (e is JsonException json)
                return DescribeJson(json);
        }
        if (NoBody().IsMatch(bad.Message))
            return "the request body is missing: send a JSON object";
        if (BindFailed().Match(bad.Message) is { Success: true } failed)
        {
            var endpoint = context.Features.Get<IExceptionHandlerFeature>()?.Endpoint ?? context.GetEndpoint();
            return $"{WireName(endpoint, failed.Groups["name"].Value)}: {Expected(failed.Groups["type"].Value)}";
        }
        return bad.Message;
    }

    /// <summary>The name a client uses for a handler parameter: the query, route or header name it is bound from.</summary>
    private static string WireName(Endpoint? endpoint, string parameter)
    {
        var info = endpoint?.Metadata.GetMetadata<System.Reflection.MethodInfo>()?.GetParameters().FirstOrDefault(p => p.Name == parameter);
        var attributes = info?.GetCustomAttributes(inherit: false) ?? [];
        var bound = attributes.OfType<IFromQueryMetadata>().Select(a => a.Name)
            .Concat(attributes.OfType<IFromRouteMetadata>().Select(a => a.Name))
            .Concat(attributes.OfType<IFromHeaderMetadata>().Select(a => a.Name))
            .FirstOrDefault(n => n is not null);
        return bound ?? parameter.TrimStart('@');
    }

    private static string Expected(string typeName) => typeName.TrimEnd('?') switch
    {
        "bool" => "must be true or false",
        "int" or "long" or "short" => "must be a whole number",
        "DateTime" or "DateTimeOffset" => "must be an ISO 8601 timestamp such as 2026-11-22T10:00:00Z",
        _ => "has the wrong format",
    };

    /// <summary>The serializer's message, reworded for API users: the JSON path first, no .NET type names.</summary>
    internal static string DescribeJson(JsonException json)
    {
        var path = json.Path is { Length: > 0 } p && p != "$" ? p : null;
        var message = json.Message;
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            return $"$.{QuotedField(message)}: unknown field";
        if (message.StartsWith("Duplicate property", StringComparison.Ordinal))
            return $"$.{QuotedField(message)}: appears more than once";
        if (MissingRequired().Match(message) is { Success: true } missing)
            return $"missing required field(s): {missing.Groups[1].Value}";
        if (message.Contains("could not be converted", StringComparison.Ordinal))
            return path is null ? "the body must be a JSON object" : $"{path}: {ExpectedJson(json)}";
        if (path is not null && message.Contains("null value", StringComparison.OrdinalIgnoreCase))
            return $"{path}: must not be null";
        var position = json.LineNumber is { } line ? $" (line {line + 1}, byte {json.BytePositionInLine + 1})" : "";
        return $"the body is not valid JSON{position}";
    }

    /// <summary>What the field should have held, read from the converter's complaint.</summary>
    private static string ExpectedJson(JsonException json)
    {
        var inner = json.InnerException?.Message ?? "";
        if (inner.Contains("surrogate", StringComparison.Ordinal) || inner.Contains("UTF-16", StringComparison.Ordinal))
            return "is not valid Unicode text";
        if (inner.Contains("as a string", StringComparison.Ordinal))
            return "must be a string";
        if (inner.Contains("as a boolean", StringComparison.Ordinal))
            return "must be true or false";
        if (inner.Contains("DateTime", StringComparison.Ordinal))
            return "must be an ISO 8601 timestamp such as 2026-11-22T10:00:00Z";
        if (inner.Contains("Int32", StringComparison.Ordinal) || inner.Contains("Int64", StringComparison.Ordinal))
            return "must be a whole number";
        if (json.InnerException is null && json.Message.Contains("List`1", StringComparison.Ordinal))
            return "must be an array";
        return "has the wrong type";
    }

    private static string QuotedField(string message) => QuotedName().Match(message) is { Success: true } m ? m.Groups[1].Value : "?";

    [System.Text.RegularExpressions.GeneratedRegex("^Implicit body inferred for parameter|^Required parameter \"[^\"]*\" was not provided from body")]
    private static partial System.Text.RegularExpressions.Regex NoBody();

    [System.Text.RegularExpressions.GeneratedRegex("^Failed to bind parameter \"(?<type>\\S+) (?<name>[^\"]+)\" from")]
    private static partial System.Text.RegularExpressions.Regex BindFailed();

    [System.Text.RegularExpressions.GeneratedRegex("property '([^']*)'")]
    private static partial System.Text.RegularExpressions.Regex QuotedName();

    [System.Text.RegularExpressions.GeneratedRegex("missing required properties including: (.*)\\.$")]
    private static partial System.Text.RegularExpressions.Regex MissingRequired();

    [LoggerMessage(EventId = 300, Level = LogLevel.Error, Message = "Unhandled error in request {RequestId}")]
    private static partial void LogUnhandled(ILogger logger, string requestId, Exception exception);
}
