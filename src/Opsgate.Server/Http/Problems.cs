using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Http;

/// <summary>RFC 7807 answers that say what is wrong and, for bad input, which field.</summary>
internal static class Problems
{
    public static ProblemHttpResult Invalid(string field, string message) =>
        TypedResults.Problem(new ValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = StatusCodes.Status400BadRequest,
            Title = "Invalid request",
            Detail = $"{field}: {message}",
        });

    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: what);

    public static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: detail);

    /// <summary>Writes a problem document directly (middleware paths that have no endpoint result).</summary>
    public static async Task WriteAsync(HttpContext context, int status, string title, string? detail, IDictionary<string, string[]>? errors = null)
    {
        context.Response.StatusCode = status;
        var problem = errors is null
            ? new ProblemDetails { Status = status, Title = title, Detail = detail }
            : new ValidationProblemDetails(errors) { Status = status, Title = title, Detail = detail };
        await context.RequestServices.GetRequiredService<IProblemDetailsService>()
            .WriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem });
    }

    /// <summary>Plain words for the statuses the framework sets on its own; null when there is nothing to add.</summary>
    public static string? DescribeStatus(HttpContext context, int status, HttpOptions limits)
    {
        var request = context.Request;
        return status switch
        {
            StatusCodes.Status404NotFound => $"there is no {request.Method} {Truncate(request.Path, 200)} in this API; the endpoints are listed at /api/v1/docs",
            StatusCodes.Status405MethodNotAllowed => $"{Truncate(request.Path, 200)} does not accept {request.Method}",
            StatusCodes.Status413PayloadTooLarge => $"the request body is larger than the limit of {limits.MaxRequestBodyBytes} bytes (Http:MaxRequestBodyBytes)",
            StatusCodes.Status415UnsupportedMediaType => request.ContentType is { Length: > 0 } type
                ? $"Content-Type: the body must be JSON sent as application/json, not {Truncate(type, 100)}"
                : "Content-Type: the body must be JSON sent as application/json, but the request has no Content-Type",
            _ => null,
        };
    }

    private static string Truncate(string? value, int max) => value is null || value.Length <= max ? value ?? "" : value[..max] + "…";
}
