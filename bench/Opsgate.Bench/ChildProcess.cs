using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Opsgate.Bench;

/// <summary>What the benchmark's child processes (Opsgate, KubeSim) share: a free loopback port, and a stop that always cleans up.</summary>
internal static class ChildProcess
{
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kills the process tree (once, whoever calls first) and removes its temp dir.</summary>
    public static void Stop(Process process, string dir, ref int stopped)
    {
        if (Interlocked.Exchange(ref stopped, 1) != 0)
            return;
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temp dir is harmless; the next run makes its own.
        }
    }
}

/// <summary>
/// A child process serving on a loopback port, with a temp dir of its own. Disposing kills it and removes the dir; so does
/// this process exiting, as a last resort.
/// </summary>
internal abstract class ChildServer : IAsyncDisposable
{
    private readonly string _dir;
    private int _stopped;

    protected ChildServer(Process process, string dir, Uri baseAddress)
    {
        Process = process;
        _dir = dir;
        BaseAddress = baseAddress;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
    }

    public Uri BaseAddress { get; }
    public int ProcessId => Process.Id;
    protected Process Process { get; }

    private void Stop() => ChildProcess.Stop(Process, _dir, ref _stopped);

    public ValueTask DisposeAsync()
    {
        Stop();
        Process.Dispose();
        return ValueTask.CompletedTask;
    }
}
