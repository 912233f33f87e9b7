namespace Opsgate.Server.Projects;

/// <summary>Why a path given by a user does not name something inside a directory.</summary>
internal enum PathProblem { None, Outside, Missing }

/// <summary>
/// Paths users give inside a directory (a project's checkout, the playbook directory): relative, without <c>..</c>,
/// and still inside once every symbolic link on the way is followed, so a link in a repository cannot point a run at
/// a file elsewhere on the server.
/// </summary>
internal static class ProjectPaths
{
    private const int MaxLinks = 40;

    /// <summary>
    /// The real path of <paramref name="relative"/> under <paramref name="root"/> in <paramref name="full"/>; a file,
    /// or a directory when <paramref name="directoryAllowed"/>. When it is a directory, every entry below it must stay
    /// inside <paramref name="root"/> as well (ansible reads them all).
    /// </summary>
    public static PathProblem Resolve(string root, string relative, bool directoryAllowed, out string full)
    {
        full = "";
        try
        {
            return Check(root, relative, directoryAllowed, ref full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A link loop, or a directory the server may not read: nothing a run could use.
            return PathProblem.Outside;
        }
    }

    private static PathProblem Check(string root, string relative, bool directoryAllowed, ref string full)
    {
        if (string.IsNullOrWhiteSpace(relative))
            return PathProblem.Missing;
        var parts = relative.Split('/', '\\');
        if (Path.IsPathRooted(relative) || parts.Contains(".."))
            return PathProblem.Outside;
        var realRoot = RealPath(root);
        var prefix = Path.TrimEndingDirectorySeparator(realRoot) + Path.DirectorySeparatorChar;
        bool Inside(string path) => RealPath(path) is var real && (real == realRoot || real.StartsWith(prefix, StringComparison.Ordinal));
        var candidate = Path.Combine(realRoot, relative);
        if (!Inside(candidate))
            return PathProblem.Outside;
        full = RealPath(candidate);
        if (File.Exists(full))
            return PathProblem.None;
        if (!directoryAllowed || !Directory.Exists(full))
            return PathProblem.Missing;
        // Every entry below, and below every directory a link inside leads to (each real directory once: links may loop).
        var seen = new HashSet<string>(StringComparer.Ordinal) { full };
        var pending = new Stack<string>([full]);
        while (pending.TryPop(out var directory))
        {
            foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
            {
                var real = entry.LinkTarget is null ? entry.FullName : RealPath(entry.FullName);
                if (!Inside(real))
                    return PathProblem.Outside;
                if (Directory.Exists(real) && seen.Add(real))
                    pending.Push(real);
            }
        }
        return PathProblem.None;
    }

    /// <summary>realpath(3) in managed code: follows every symbolic link, component by component; missing parts stay as they are.</summary>
    internal static string RealPath(string path)
    {
        var pending = new Stack<string>(Path.GetFullPath(path).Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse());
        var result = "/";
        var links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".")
                continue;
            if (part == "..")
            {
                result = Path.GetDirectoryName(result) ?? "/";
                continue;
            }
            var next = result == "/" ? "/" + part : result + "/" + part;
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                result = next;
                continue;
            }
            if (++links > MaxLinks)
                throw new IOException($"too many levels of symbolic links in {path}");
            if (target.StartsWith('/'))
                result = "/";
            foreach (var p in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse())
                pending.Push(p);
        }
        return result;
    }
}
