namespace Opsgate.Server.Kubernetes;

/// <summary>The API server answered with an error <c>Status</c>; <see cref="Exception.Message"/> is its message.</summary>
internal sealed class KubeApiException(int statusCode, string reason, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    /// <summary>Kubernetes' reason: NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Unauthorized, ...</summary>
    public string Reason { get; } = reason;
}

/// <summary>The API server could not be reached (connection refused, TLS failure, DNS) or did not answer in time.</summary>
internal sealed class KubeUnreachableException(string message, bool timedOut, Exception? inner = null) : Exception(message, inner)
{
    public bool TimedOut { get; } = timedOut;
}
