using System.Net;

namespace Opsgate.Client;

/// <summary>The server answered with an error: its problem+json, or what could be made of a body that was not one.</summary>
public sealed class OpsgateApiException : Exception
{
    public OpsgateApiException(HttpStatusCode status, string title, string? detail, IReadOnlyDictionary<string, string[]>? errors = null, string? requestId = null)
        : base(detail is null ? $"{(int)status} {title}" : $"{(int)status} {title}: {detail}")
    {
        Status = status;
        Title = title;
        Detail = detail;
        Errors = errors ?? new Dictionary<string, string[]>();
        RequestId = requestId;
    }

    public HttpStatusCode Status { get; }
    public string Title { get; }

    /// <summary>What the server says is wrong (problem+json <c>detail</c>).</summary>
    public string? Detail { get; }

    /// <summary>For invalid input: the messages per field.</summary>
    public IReadOnlyDictionary<string, string[]> Errors { get; }

    public string? RequestId { get; }

    /// <summary>401 or 403: the credential is missing, wrong, or allows too little.</summary>
    public bool IsAuthProblem => Status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden;
}
