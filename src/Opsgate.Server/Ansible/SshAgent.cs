using System.Diagnostics;
using System.Globalization;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Ansible;

/// <summary>
/// An <c>ssh-agent</c> of one run, holding the run's machine key: the key goes to <c>ssh-add -</c> on stdin and is never
/// written to a file a playbook could read. ansible's ssh finds it through <c>SSH_AUTH_SOCK</c> (a socket in the run's
/// private directory); a host whose inventory names a key file of its own still uses that file. The agent is a child of
/// the server, killed when the run ends however it ends; the key also expires in the agent after the run's time limit,
/// should the server die without killing it.
/// </summary>
internal sealed class SshAgent : IAsyncDisposable
{
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(10);

    private readonly Process _agent;

    private SshAgent(Process agent, string socket)
    {
        _agent = agent;
        Socket = socket;
    }

    /// <summary>The agent's socket, for <c>SSH_AUTH_SOCK</c>.</summary>
    public string Socket { get; }

    /// <summary>Starts an agent listening on <paramref name="socket"/> and adds <paramref name="privateKey"/> (OpenSSH text, no passphrase) to it for at most <paramref name="lifetime"/>.</summary>
    /// <exception cref="StepFailedException">The agent did not start, or refused the key (the message has ssh-add's reason, never the key).</exception>
    public static async Task<SshAgent> StartAsync(string socket, string privateKey, TimeSpan lifetime, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(ChildProcess.FindOnSafePath("ssh-agent"))
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        // -D: in the foreground, so it stays this process's child and dies by its pid.
        foreach (var arg in new[] { "-D", "-a", socket })
            psi.ArgumentList.Add(arg);
        psi.Environment.Clear();
        psi.Environment["PATH"] = ChildProcess.SafePath;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("ssh-agent did not start");
        var agent = new SshAgent(process, socket);
        try
        {
            process.StandardInput.Close();
            // It prints where it listens and nothing more; the pipes are drained so it can never block on them.
            _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            var watch = Stopwatch.StartNew();
            while (!File.Exists(socket))
            {
                if (process.HasExited)
                    throw new StepFailedException($"ssh-agent exited with {process.ExitCode} before listening: {(await stderr).Trim()}");
                if (watch.Elapsed > StartLimit)
                    throw new StepFailedException($"ssh-agent did not listen on its socket within {StartLimit.TotalSeconds:0} s");
                await Task.Delay(10, ct);
            }
            await agent.AddAsync(privateKey, lifetime, ct);
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    private async Task AddAsync(string privateKey, TimeSpan lifetime, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(ChildProcess.FindOnSafePath("ssh-add"));
        var seconds = (long)Math.Ceiling(Math.Min(lifetime.TotalSeconds, int.MaxValue));
        foreach (var arg in new[] { "-q", "-t", seconds.ToString(CultureInfo.InvariantCulture), "-" })
            psi.ArgumentList.Add(arg);
        psi.Environment.Clear();
        psi.Environment["PATH"] = ChildProcess.SafePath;
        psi.Environment["SSH_AUTH_SOCK"] = Socket;
        // A key with a passphrase would make ssh-add ask for it; there is no one to ask.
        psi.Environment["SSH_ASKPASS_REQUIRE"] = "never";
        var key = privateKey.EndsWith('\n') ? privateKey : privateKey + "\n";
        var added = await ChildProcess.RunAsync(psi, StartLimit, ct, stdin: key);
        if (added.TimedOut)
            throw new StepFailedException($"ssh-add did not load the credential's key within {StartLimit.TotalSeconds:0} s");
        if (added.ExitCode != 0)
            throw new StepFailedException($"the credential's SSH key could not be loaded into the run's ssh-agent: {added.Stderr.Trim()}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_agent.HasExited)
                _agent.Kill();
            await _agent.WaitForExitAsync(CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            // Gone already.
        }
        _agent.Dispose();
        // Its socket goes with the run's directory.
    }
}
