using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>Two processes on one data dir: the start-up sweep of one removes what a gone process left, never what a live one uses.</summary>
public sealed class PrivateDirectoriesTests
{
    private static PrivateDirectories For(TempDir dir) =>
        new(Options.Create(new OpsgateOptions { DataDir = dir.Path }), NullLogger<PrivateDirectories>.Instance);

    [Fact]
    public void The_sweep_removes_what_a_gone_process_left_and_keeps_a_live_processs_directories()
    {
        using var dir = new TempDir();
        const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

        // A process that was killed: its directory and lock file stay, nobody holds the lock.
        string gone;
        using (var killed = For(dir))
        {
            gone = killed.Create("ansible").FullName;
            File.WriteAllText(Path.Combine(gone, "extra_vars.json"), "secret");
        }
        Directory.CreateDirectory(gone); // Dispose cleaned up; put back what a kill -9 leaves
        File.WriteAllText(Path.Combine(gone, "extra_vars.json"), "secret");
        var goneId = Path.GetFileName(Path.GetDirectoryName(gone)!);
        File.WriteAllText(Path.Combine(dir.Path, "run", goneId + ".lock"), "");

        using var live = For(dir);
        var used = live.Create("git");
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(used.FullName));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(Path.Combine(dir.Path, "run")));

        using var starting = For(dir);
        Assert.Equal(1, starting.Sweep());
        Assert.False(Directory.Exists(Path.GetDirectoryName(gone)));
        Assert.False(File.Exists(Path.Combine(dir.Path, "run", goneId + ".lock")));
        Assert.True(Directory.Exists(used.FullName));
        Assert.True(starting.IsLive(live.ProcessId));
        Assert.False(starting.IsLive(goneId));

        // A clean shutdown takes its own directory with it.
        live.Dispose();
        Assert.False(Directory.Exists(Path.GetDirectoryName(used.FullName)));
        Assert.Equal(0, starting.Sweep());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(dir.Path, "run")));
    }
}
