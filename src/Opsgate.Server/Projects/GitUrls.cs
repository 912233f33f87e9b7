using System.Text.RegularExpressions;

namespace Opsgate.Server.Projects;

/// <summary>How a repository is reached, which decides the credential kinds it can use.</summary>
internal enum GitTransport { Local, Ssh, Https }

/// <summary>
/// The repository addresses and refs Opsgate accepts. git takes a URL or ref starting with '-' for an option, and
/// some URLs for commands (<c>ext::</c>, <c>ssh://-oProxyCommand=...</c>), so only plain forms pass: <c>file://</c>,
/// absolute local paths, <c>ssh://</c>, <c>user@host:path</c> and <c>https://</c>. git itself is also told
/// (GIT_ALLOW_PROTOCOL) to use no other transport, submodules and redirects included. Which local repositories a
/// project may name is <see cref="LocalRepositories"/>' rule, on top of this form check.
/// </summary>
internal static partial class GitUrls
{
    public const int MaxLength = 2048;

    /// <summary>Null when <paramref name="url"/> is acceptable, else why not.</summary>
    public static string? Check(string url, out GitTransport transport)
    {
        transport = GitTransport.Local;
        if (url.Length is 0 or > MaxLength)
            return $"must be 1-{MaxLength} characters";
        if (url.StartsWith('-'))
            return "must not start with '-' (git would take it for an option)";
        if (url.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
            return "must not contain spaces or control characters";
        if (url.StartsWith("file://", StringComparison.Ordinal))
            return url.Length > 7 && url[7] == '/' && !url.Contains("/../", StringComparison.Ordinal) ? null : "a file:// URL needs an absolute path (file:///srv/git/repo.git)";
        if (url.StartsWith('/'))
            return null;
        if (url.StartsWith("https://", StringComparison.Ordinal) || url.StartsWith("ssh://", StringComparison.Ordinal))
        {
            transport = url[0] == 'h' ? GitTransport.Https : GitTransport.Ssh;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Host.Length == 0)
                return "is not a valid URL";
            if (uri.Host.StartsWith('-') || uri.UserInfo.StartsWith('-'))
                return "the host and user must not start with '-'";
            if (HasPassword(uri))
                return "must not carry a password; store it as a credential and name it in 'credential'";
            return null;
        }
        if (ScpLike().Match(url) is { Success: true })
        {
            transport = GitTransport.Ssh;
            return null;
        }
        return "must be a file:// URL, an absolute path to a repository on the server, ssh://, user@host:path or https://";
    }

    private static bool HasPassword(Uri uri) => Uri.UnescapeDataString(uri.UserInfo).Contains(':', StringComparison.Ordinal);

    /// <summary>
    /// The URL as it may be recorded (audit log): the user part of an https:// or ssh:// URL replaced, since a
    /// refused URL may carry a password.
    /// </summary>
    public static string ForAudit(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0 && uri.Scheme is "https" or "ssh" or "http"
            ? url.Replace(uri.UserInfo + "@", "[REDACTED]@", StringComparison.Ordinal)
            : url;

    /// <summary>A branch, tag, full ref name (<c>refs/...</c>) or commit; git's own ref rules, plus never a leading '-'.</summary>
    public static string? CheckRef(string gitRef)
    {
        if (gitRef.Length is 0 or > 250)
            return "must be 1-250 characters";
        if (!RefChars().IsMatch(gitRef) || gitRef.Contains("..", StringComparison.Ordinal) || gitRef.Contains("//", StringComparison.Ordinal)
            || gitRef.EndsWith('/') || gitRef.EndsWith(".lock", StringComparison.Ordinal) || gitRef.Contains("/.", StringComparison.Ordinal))
            return "must be a branch, tag or commit: letters, digits and . _ - /, not starting with '-', '.' or '/', without '..'";
        return null;
    }

    /// <summary>An abbreviated or full commit id, as opposed to a branch or tag name.</summary>
    public static bool LooksLikeCommit(string gitRef) => CommitId().IsMatch(gitRef);

    /// <summary>user@host:path, git's scp-like syntax (the user is required: "host:path" is too easily a local path with a colon).</summary>
    [GeneratedRegex("^[A-Za-z0-9._][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._~/][A-Za-z0-9._~/+-]*$")]
    private static partial Regex ScpLike();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._/-]*$")]
    private static partial Regex RefChars();

    [GeneratedRegex("^[0-9a-f]{7,40}$")]
    private static partial Regex CommitId();
}
