using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace Opsgate.Server.Hosting;

/// <summary>
/// The private (0700) directories runs and git calls keep their secrets in (SSH keys, extra vars, inventories):
/// <c>{DataDir}/run/&lt;process id&gt;/&lt;kind&gt;-&lt;random&gt;</c>, never the shared temp directory. Each process of a
/// data dir holds <c>{DataDir}/run/&lt;process id&gt;.lock</c> open and locked (FileShare.None, an flock on Unix) for its
/// life; at start-up <see cref="Sweep"/> deletes what processes that are gone (a kill -9, a crash, a power cut) left
/// behind, while the directories of a process that still runs on the same data dir stay.
/// </summary>
internal sealed partial class PrivateDirectories(IOptions<OpsgateOptions> opsgate, ILogger<PrivateDirectories> logger) : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const string LockSuffix = ".lock";
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    private static readonly SearchValues<char> Names = SearchValues.Create(Alphabet);

    private readonly Lock _gate = new();
    private FileStream? _lock;
    private string? _mine;
    private bool _disposed;

    /// <summary><c>{DataDir}/run</c>, absolute.</summary>
    public string Root => Path.GetFullPath(Path.Combine(opsgate.Value.DataDir, "run"));

    /// <summary>This process's id under <see cref="Root"/> (fixed once the first directory is made).</summary>
    public string ProcessId { get; private set; } = RandomName(8);

    /// <summary>A new empty 0700 directory for one run or call; the caller deletes it when done (a crash leaves it to the next start's sweep).</summary>
    public DirectoryInfo Create(string kind)
    {
        var parent = Mine();
        while (true)
        {
            var path = Path.Combine(parent, kind + "-" + RandomName(8));
            if (Directory.Exists(path))
                continue;
            MakePrivate(path);
            return new DirectoryInfo(path);
        }
    }

    /// <summary>True while the process with this id (a live process of this data dir) holds its lock.</summary>
    public bool IsLive(string processId)
    {
        lock (_gate)
        {
            if (processId == ProcessId && _mine is not null)
                return true;
        }
        if (processId.Length == 0 || processId.AsSpan().IndexOfAnyExcept(Names) >= 0)
            return false;
        try
        {
            using var held = new FileStream(Path.Combine(Root, processId + LockSuffix), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
        catch (IOException)
        {
            return true; // locked by its owner
        }
    }

    /// <summary>
    /// Deletes everything under <see cref="Root"/> that no live process owns: directories of processes that are
    /// gone, their lock files, and strays. Runs at start-up, before the job worker claims anything.
    /// </summary>
    public int Sweep()
    {
        var root = Root;
        if (!Directory.Exists(root))
            return 0;
        var removed = 0;
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos())
        {
            if (entry.Name.EndsWith(LockSuffix, StringComparison.Ordinal) || IsLive(entry.Name))
                continue;
            if (Delete(entry))
                removed++;
        }
        // A lock whose directory is gone and which nobody holds: taken, then deleted while held.
        foreach (var lockFile in new DirectoryInfo(root).EnumerateFiles("*" + LockSuffix))
        {
            var id = lockFile.Name[..^LockSuffix.Length];
            if (Directory.Exists(Path.Combine(root, id)) || id == ProcessId)
                continue;
            try
            {
                using var held = new FileStream(lockFile.FullName, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                lockFile.Delete();
            }
            catch (IOException)
            {
                // Held: a process that is starting; or gone already.
            }
        }
        if (removed > 0)
            LogSwept(logger, removed, root);
        return removed;
    }

    private bool Delete(FileSystemInfo entry)
    {
        try
        {
            if (entry is DirectoryInfo directory)
                directory.Delete(recursive: true);
            else
                entry.Delete();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogSweepFailed(logger, entry.FullName, e);
            return false;
        }
    }

    private string Mine()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_mine is not null)
                return _mine;
            var root = Root;
            MakePrivate(root);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    // The lock first, then the directory: a directory whose lock nobody holds is never a live one.
                    _lock = new FileStream(Path.Combine(root, ProcessId + LockSuffix), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
                    break;
                }
                catch (IOException) when (attempt < 5)
                {
                    ProcessId = RandomName(8); // taken, or a sweeper had it for a moment
                }
            }
            var mine = Path.Combine(root, ProcessId);
            MakePrivate(mine);
            return _mine = mine;
        }
    }

    private static void MakePrivate(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        Directory.CreateDirectory(path, OwnerOnly);
        File.SetUnixFileMode(path, OwnerOnly); // one made earlier by hand or by an older version
    }

    private static string RandomName(int length) => RandomNumberGenerator.GetString(Alphabet, length);

    /// <summary>On a clean shutdown this process's directories go with it.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            if (_mine is not null)
            {
                try
                {
                    Directory.Delete(_mine, recursive: true);
                    File.Delete(_lock!.Name);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    LogSweepFailed(logger, _mine, e);
                }
            }
            _lock?.Dispose();
        }
    }

    [LoggerMessage(EventId = 60, Level = LogLevel.Information, Message = "Deleted {Count} private run directories left under {Root} by processes that are gone")]
    private static partial void LogSwept(ILogger logger, int count, string root);

    [LoggerMessage(EventId = 61, Level = LogLevel.Warning, Message = "Could not delete {Path}")]
    private static partial void LogSweepFailed(ILogger logger, string path, Exception exception);
}
