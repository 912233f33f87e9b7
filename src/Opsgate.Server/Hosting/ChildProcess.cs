using System.Diagnostics;

namespace Opsgate.Server.Hosting;

/// <summary>How a short-lived child process ended: its exit code and whole output, or that it ran out of time (then killed, outputs empty).</summary>
internal readonly record struct ChildProcessResult(int ExitCode, string Stdout, string Stderr, bool TimedOut);

/// <summary>
/// Runs a short-lived helper (git, ansible-inventory, ssh -O exit) the one way: no shell, stdin closed (after
/// <c>stdin</c>, when given: ssh-add reads a key so, never from a file), stdout and
/// stderr read whole, at most <c>timeout</c>, and the whole process tree killed when time runs out or the caller
/// cancels. The caller builds <see cref="ProcessStartInfo"/> (arguments through ArgumentList, a scrubbed environment).
/// </summary>
internal static class ChildProcess
{
    /// <summary>The PATH child processes (ansible, git, ssh-agent, bwrap) run with; the server's own PATH may hold shims (pyenv) or writable directories.</summary>
    internal const string SafePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The full path of <paramref name="name"/> on <see cref="SafePath"/>.</summary>
    internal static string FindOnSafePath(string name) =>
        SafePath.Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"'{name}' was not found in {SafePath}; it is needed to run ansible-playbook");

    /// <summary>
    /// Throws what <see cref="Process.Start(ProcessStartInfo)"/> throws (a missing binary is a
    /// <see cref="System.ComponentModel.Win32Exception"/>) and <see cref="OperationCanceledException"/> when
    /// <paramref name="ct"/> is cancelled; a timeout is a result with <see cref="ChildProcessResult.TimedOut"/>.
    /// </summary>
    public static async Task<ChildProcessResult> RunAsync(ProcessStartInfo psi, TimeSpan timeout, CancellationToken ct, string? stdin = null)
    {
        psi.UseShellExecute = false;
        psi.RedirectStandardInput = psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"{Path.GetFileName(psi.FileName)} did not start");
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        if (stdin is not null)
        {
            try
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), limit.Token);
            }
            catch (IOException)
            {
                // The child exited without reading it all; its exit code and stderr say why.
            }
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(limit.Token);
        var stderr = process.StandardError.ReadToEndAsync(limit.Token);
        try
        {
            await Task.WhenAll(stdout, stderr, process.WaitForExitAsync(limit.Token));
        }
        catch (OperationCanceledException)
        {
            // A script the child runs is its child: the whole tree goes.
            process.Kill(entireProcessTree: true);
            ct.ThrowIfCancellationRequested();
            return new ChildProcessResult(-1, "", "", TimedOut: true);
        }
        return new ChildProcessResult(process.ExitCode, await stdout, await stderr, TimedOut: false);
    }
}
