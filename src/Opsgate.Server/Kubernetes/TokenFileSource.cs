namespace Opsgate.Server.Kubernetes;

/// <summary>
/// A kubeconfig <c>tokenFile</c>, re-read at most once a minute as client-go does: the kubelet rotates projected
/// service account tokens, and a token read once would expire under a long-running server. A 401 forces a re-read.
/// </summary>
internal sealed class TokenFileSource(string path, string token, TimeProvider time)
{
    private static readonly TimeSpan RereadAfter = TimeSpan.FromMinutes(1);
    private readonly Lock _gate = new();
    private string _token = token;
    private DateTimeOffset _readAt = time.GetUtcNow();

    public string Get()
    {
        lock (_gate)
        {
            if (time.GetUtcNow() - _readAt < RereadAfter)
                return _token;
            try
            {
                var text = File.ReadAllText(path).Trim();
                if (text.Length > 0)
                    _token = text;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Keep the last token: the kubelet swaps the file atomically, so a failed read is momentary,
                // and a token that no longer works shows up as the server's own 401.
            }
            _readAt = time.GetUtcNow();
            return _token;
        }
    }

    /// <summary>The server refused the token: read the file again on the next request.</summary>
    public void Invalidate()
    {
        lock (_gate)
            _readAt = DateTimeOffset.MinValue;
    }
}
