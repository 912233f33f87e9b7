using Microsoft.Extensions.Options;

namespace Opsgate.Server.Projects;

/// <summary>
/// Which repositories on the server's own disk projects may name (<c>file://</c> URLs and absolute paths): only those
/// under <see cref="ProjectOptions.LocalRepositoryRoots"/>. Without the rule an operator could make a project of any
/// repository the server's user can read, and read it through runs and inventory sources.
/// </summary>
internal sealed class LocalRepositories(IOptions<ProjectOptions> options)
{
    public const string Setting = "Ansible:LocalRepositoryRoots";

    /// <summary>Null when <paramref name="url"/> (already accepted by <see cref="GitUrls.Check"/>) is not local, or is under a root; else why not.</summary>
    public string? Refusal(string url)
    {
        string path;
        if (url.StartsWith("file://", StringComparison.Ordinal))
        {
            // git may decode %XX in a file:// URL; a path that needs escaping is refused rather than guessed at.
            if (url.Contains('%', StringComparison.Ordinal))
                return "a file:// URL must not contain '%' escapes; give the repository's absolute path instead";
            path = url["file://".Length..];
        }
        else if (url.StartsWith('/'))
        {
            path = url;
        }
        else
        {
            return null;
        }
        // '..' after a link leads to the link target's parent for the kernel, not lexically: refused rather than resolved twice.
        if (path.Split('/').Contains(".."))
            return "a repository path must not contain '..'";
        var roots = options.Value.LocalRepositoryRoots;
        if (roots.Count == 0)
            return $"repositories on the server's disk are not allowed: {Setting} names no directory (set it to allow those under it)";
        string real;
        try
        {
            real = ProjectPaths.RealPath(path);
            foreach (var root in roots)
            {
                var realRoot = Path.TrimEndingDirectorySeparator(ProjectPaths.RealPath(root));
                if (real == realRoot || real.StartsWith(realRoot + "/", StringComparison.Ordinal))
                    return null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A link loop or an unreadable directory on the way: not a repository a run could use anyway.
        }
        return $"a repository on the server's disk must be under one of the directories of {Setting}, once symbolic links are followed";
    }
}
