using System.Data.Common;

namespace Opsgate.Server.Projects;

/// <summary>A checkout this process reads; pruning leaves it alone until disposed.</summary>
internal sealed class CheckoutLease(string path, Action release) : IDisposable
{
    private Action? _release = release;

    public string Path { get; } = path;

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}

/// <summary>
/// Pruning: each project keeps a list of the commits it checked out (<c>&lt;id&gt;.checkouts</c>, most recently used
/// last, at most Ansible:KeepCheckouts). When a checkout is made, every checkout no list names, that no job which has
/// not finished pins, and that this process is not reading, is removed.
/// </summary>
/// <remarks>
/// Why a run's checkout is never removed under it: a run pins its commit in the database (project_pins, or
/// <c>project_commit</c> in a shard's parameters) before it asks for the checkout, and both asking and pruning take the
/// checkouts lock (in this process, and a file lock for other processes on the same data dir). A prune that read the
/// pins before a job pinned has finished, commit renamed away, before that job's request looks for the directory; the
/// request then makes it again. Replicas with their own data dirs each prune their own cache; the pins are shared, so
/// one keeps a commit another's job runs, which costs only disk.
/// </remarks>
internal sealed partial class ProjectCache
{
    private const string CheckoutsLock = ".checkouts";
    private const string UsedSuffix = ".checkouts";
    private readonly Dictionary<string, int> _inUse = new(StringComparer.Ordinal);

    private string UsedList(string projectId) => Path.Combine(Root, projectId + UsedSuffix);

    /// <summary>Counts <paramref name="commit"/> as read by this process until the lease is disposed. Under the checkouts lock.</summary>
    private CheckoutLease Use(string commit, string path)
    {
        lock (_inUse)
            _inUse[commit] = _inUse.GetValueOrDefault(commit) + 1;
        return new CheckoutLease(path, () =>
        {
            lock (_inUse)
            {
                if (--_inUse[commit] == 0)
                    _inUse.Remove(commit);
            }
        });
    }

    /// <summary>Moves <paramref name="commit"/> to the end of the project's list, which keeps its last KeepCheckouts. Under the checkouts lock.</summary>
    private void RecordUse(string projectId, string commit)
    {
        var path = UsedList(projectId);
        var used = File.Exists(path) ? File.ReadAllLines(path).Where(c => c.Length > 0 && c != commit).ToList() : [];
        used.Add(commit);
        var temp = path + ".new";
        File.WriteAllLines(temp, used.TakeLast(options.Value.KeepCheckouts));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Renames every checkout to be pruned to a work name (so no reader finds half of it) and returns those names. A
    /// failure to read the pins prunes nothing: a checkout kept too long costs disk, one removed under a run fails it.
    /// Under the checkouts lock.
    /// </summary>
    private async Task<List<string>> SetAsideAsync(string made, CancellationToken ct)
    {
        var checkouts = Path.Combine(Root, "checkouts");
        var keep = new HashSet<string>(StringComparer.Ordinal) { made };
        try
        {
            foreach (var list in Directory.EnumerateFiles(Root, "*" + UsedSuffix))
                keep.UnionWith(File.ReadAllLines(list).TakeLast(options.Value.KeepCheckouts));
            lock (_inUse)
                keep.UnionWith(_inUse.Keys);
            keep.UnionWith(await projects.PinnedCommitsAsync(ct));
        }
        catch (Exception e) when (e is DbException or IOException or UnauthorizedAccessException or TimeoutException)
        {
            LogPruneSkipped(logger, e);
            return [];
        }
        var doomed = new List<string>();
        foreach (var checkout in new DirectoryInfo(checkouts).EnumerateDirectories())
        {
            if (checkout.Name.StartsWith('.') || keep.Contains(checkout.Name))
                continue;
            var aside = WorkDirectory();
            try
            {
                checkout.MoveTo(aside);
                doomed.Add(aside);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogPruneFailed(logger, checkout.Name, e);
            }
        }
        if (doomed.Count > 0)
            LogPruned(logger, doomed.Count, keep.Count);
        return doomed;
    }

    /// <summary>Removes checkouts set aside; one that cannot be removed now goes at the next start (<see cref="SweepLeftovers"/>).</summary>
    private void Delete(List<string> doomed)
    {
        foreach (var path in doomed)
        {
            try
            {
                Directory.Delete(path, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogPruneFailed(logger, Path.GetFileName(path), e);
            }
        }
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Pruned {Count} project checkouts; {Kept} commits are kept (newest per project, pinned by unfinished jobs, in use)")]
    private static partial void LogPruned(ILogger logger, int count, int kept);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Project checkouts not pruned this time: the pins of unfinished jobs or the checkout lists could not be read")]
    private static partial void LogPruneSkipped(ILogger logger, Exception e);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Project checkout {Name} could not be removed; the next start removes it")]
    private static partial void LogPruneFailed(ILogger logger, string name, Exception e);
}
