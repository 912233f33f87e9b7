using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Ansible;

/// <summary>What one run's sandbox lets through: its own directories writable, the playbook's tree readable.</summary>
/// <param name="RunDirectory">The run's private directory (inventory, extra vars, home, temp): bound read-write.</param>
/// <param name="SocketDirectory">Where the events and agent sockets are when the run directory's path is too long for them, or null.</param>
/// <param name="Playbook">The playbook file; its project checkout (or directory) is bound read-only.</param>
internal sealed record SandboxPaths(string RunDirectory, string? SocketDirectory, string Playbook);

/// <summary>
/// Runs ansible-playbook inside bubblewrap (<c>bwrap</c>) when <c>Ansible:Sandbox</c> and the machine allow it: the host's
/// file system read-only, with the server's data dir, its home directory, the secret-store key file and its
/// configuration files hidden, a private <c>/tmp</c>, a pid namespace of its own (so <c>/proc</c> shows no other
/// process's environment) and the host's network. What is decided here is probed once, at start.
/// </summary>
internal sealed partial class AnsibleSandbox(
    IOptions<AnsibleOptions> options, IOptions<OpsgateOptions> opsgate, IOptions<SecretsOptions> secrets, IConfiguration configuration,
    PrivateDirectories directories, ILogger<AnsibleSandbox> logger) : Observability.IHealthPart
{
    public const string Auto = "auto", Bubblewrap = "bubblewrap", None = "none";

    private readonly Lazy<(string? Bwrap, string Health)> _state = new(() => Decide(options.Value.Sandbox, logger));

    /// <summary>The bwrap binary runs go through, or null: runs are not sandboxed.</summary>
    public string? Bwrap => _state.Value.Bwrap;

    /// <summary>The <c>ansible_sandbox</c> line of <c>/health</c>.</summary>
    public string Health => _state.Value.Health;

    string Observability.IHealthPart.Name => "ansible_sandbox";

    string Observability.IHealthPart.State => Health;

    /// <summary>
    /// Decides once: <c>bubblewrap</c> that cannot run stops start-up; <c>auto</c> without a working bwrap warns and runs
    /// unsandboxed. Called at start (<see cref="AnsibleSandboxProbe"/>) and, should a run come first, by that run.
    /// </summary>
    public void Probe() => _ = _state.Value;

    private static (string? Bwrap, string Health) Decide(string mode, ILogger logger)
    {
        if (mode == None)
            return (null, "disabled: runs are not sandboxed (Ansible:Sandbox is none)");
        var problem = TryBwrap(out var bwrap);
        if (problem is null)
        {
            LogSandboxed(logger, bwrap!);
            return (bwrap, "healthy: runs are sandboxed (bubblewrap)");
        }
        if (mode == Bubblewrap)
            throw new StartupException($"configuration error: Ansible:Sandbox is bubblewrap but {problem}");
        LogNotSandboxed(logger, problem);
        return (null, $"disabled: runs are not sandboxed ({problem})");
    }

    /// <summary>Null when bwrap is on the safe PATH and sets up a sandbox like a run's; else what is wrong.</summary>
    private static string? TryBwrap(out string? bwrap)
    {
        bwrap = ChildProcess.SafePath.Split(':').Select(d => Path.Combine(d, "bwrap")).FirstOrDefault(File.Exists);
        if (bwrap is null)
            return $"bwrap (Debian package bubblewrap) was not found in {ChildProcess.SafePath}";
        var psi = new ProcessStartInfo(bwrap);
        foreach (var arg in new[] { "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--unshare-pid", "--", "true" })
            psi.ArgumentList.Add(arg);
        psi.Environment.Clear();
        psi.Environment["PATH"] = ChildProcess.SafePath;
        try
        {
            // Start-up is synchronous here; the probe is one short process.
            var result = ChildProcess.RunAsync(psi, TimeSpan.FromSeconds(10), CancellationToken.None).GetAwaiter().GetResult();
            if (result.TimedOut)
                return $"{bwrap} did not finish a test sandbox within 10 s";
            return result.ExitCode == 0 ? null : $"{bwrap} cannot make a sandbox here: {result.Stderr.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"{bwrap} cannot be run: {e.Message}";
        }
    }

    /// <summary>
    /// Turns <paramref name="psi"/> (ansible-playbook and its arguments) into the same command inside bwrap, or, without a
    /// sandbox, under <c>setsid</c>. Either way the command leads a process group of its own that a stop signals
    /// (see <see cref="ProcessGroup"/>).
    /// </summary>
    public void Wrap(ProcessStartInfo psi, SandboxPaths paths)
    {
        // setsid makes ansible-playbook the leader of a new session and process group with its own pid, so signals can
        // reach the whole group (and the callback plugin's killpg reaches ansible's, not the sandbox's first process's);
        // --wait keeps the exit code should setsid ever need to fork.
        List<string> command = [ChildProcess.FindOnSafePath("setsid"), "--wait", psi.FileName, .. psi.ArgumentList];
        psi.ArgumentList.Clear();
        if (Bwrap is { } bwrap)
        {
            psi.FileName = bwrap;
            command = [.. Arguments(paths), .. command];
        }
        else
        {
            psi.FileName = command[0];
            command.RemoveAt(0);
        }
        foreach (var arg in command)
            psi.ArgumentList.Add(arg);
    }

    /// <summary>bwrap's arguments up to the command. bwrap applies them in order: each later mount covers what is below it.</summary>
    private List<string> Arguments(SandboxPaths paths)
    {
        var o = options.Value;
        List<string> args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"];
        // 1. What the operator lets local tasks write.
        foreach (var writable in WritablePaths(o))
            args.AddRange(["--bind", writable, writable]);
        // 2. The playbook's tree, read-only even inside a writable path.
        var tree = PlaybookTree(paths.Playbook, o);
        args.AddRange(["--ro-bind", tree, tree]);
        // 3. Hidden, also inside a writable path or the playbook's tree: the data dir (database, secret key, projects,
        //    every run's directory), the server user's home (ssh keys, cloud credentials; an empty writable one lets
        //    ansible's local connection make ~/.ansible/tmp), and single files the server reads secrets from.
        var hidden = HiddenDirectories();
        foreach (var dir in hidden)
            args.AddRange(["--tmpfs", dir]);
        foreach (var file in HiddenFiles())
            args.AddRange(["--ro-bind", "/dev/null", file]);
        // 4. Back on top of the hidden ones: the playbook's tree when it is inside one (a project checkout, an inline
        //    playbook's directory), never one that holds a hidden directory; then this run's own directories.
        if (hidden.Any(h => Under(tree, h) && tree != h))
            args.AddRange(["--ro-bind", tree, tree]);
        args.AddRange(["--bind", paths.RunDirectory, paths.RunDirectory]);
        if (paths.SocketDirectory is { } sockets)
            args.AddRange(["--bind", sockets, sockets]);
        // A pid namespace: /proc shows the sandbox's processes only (not the server's environment), and everything in
        // it dies with its first process (see EndNamespace). The network is the host's: ansible reaches
        // its machines over SSH. No --die-with-parent: its PR_SET_PDEATHSIG fires when the *thread* that started bwrap
        // exits, and .NET starts it from a pool thread that may retire mid-run (runs were killed so); a server that
        // dies is noticed by the callback plugin, which stops the run. No --new-session: setsid below does that for
        // ansible itself.
        args.AddRange(["--unshare-pid", "--chdir", paths.RunDirectory, "--"]);
        return args;
    }

    internal static IEnumerable<string> WritablePaths(AnsibleOptions o) =>
        (o.SandboxWritablePaths ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private List<string> HiddenDirectories()
    {
        var data = Path.GetFullPath(opsgate.Value.DataDir);
        var found = new List<string> { data };
        if (!Under(directories.Root, data))
            found.Add(directories.Root);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home is { Length: > 1 } && Directory.Exists(home) && Path.GetFullPath(home) != "/")
            found.Add(Path.GetFullPath(home));
        return found;
    }

    private IEnumerable<string> HiddenFiles()
    {
        var data = Path.GetFullPath(opsgate.Value.DataDir);
        var candidates = new List<string?>
        {
            secrets.Value.KeyFile is { Length: > 0 } key ? Path.GetFullPath(key) : null,
            (configuration["config"] ?? Environment.GetEnvironmentVariable("OPSGATE_CONFIG")) is { Length: > 0 } yaml ? Path.GetFullPath(yaml) : null,
        };
        // appsettings*.json next to the binary may hold a connection string or Secrets:Key.
        candidates.AddRange(Directory.EnumerateFiles(AppContext.BaseDirectory, "appsettings*.json"));
        return candidates.OfType<string>().Where(f => File.Exists(f) && !Under(f, data)).Distinct(StringComparer.Ordinal);
    }

    /// <summary>
    /// What a playbook may read around it: its project checkout (ProjectCache keeps them as
    /// <c>{DataDir}/projects/checkouts/&lt;commit&gt;</c>), <c>Ansible:PlaybookDirectory</c>, or the directory of an
    /// inline playbook.
    /// </summary>
    private string PlaybookTree(string playbook, AnsibleOptions o)
    {
        var file = Path.GetFullPath(playbook);
        var checkouts = Path.Combine(Path.GetFullPath(opsgate.Value.DataDir), "projects", "checkouts");
        if (Under(file, checkouts))
            return Path.Combine(checkouts, file[(checkouts.Length + 1)..].Split('/')[0]);
        if (o.PlaybookDirectory is { Length: > 0 } dir && Under(file, Path.GetFullPath(dir)))
            return Path.GetFullPath(dir);
        return Path.GetDirectoryName(file)!;
    }

    private static bool Under(string path, string dir) =>
        path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal) || path == dir;

    /// <summary>
    /// The process group a stop signals: without a sandbox the process itself (setsid made it the leader); inside
    /// bwrap ansible-playbook, the child of the sandbox's first process (bwrap itself is not signalled: it dies on
    /// SIGINT, and would take the sandbox down with it before ansible could stop cleanly). Null while there is none yet.
    /// </summary>
    public int? ProcessGroup(Process process)
    {
        if (Bwrap is null)
            return process.Id;
        return OnlyChild(process.Id) is { } first ? OnlyChild(first) : null;
    }

    /// <summary>
    /// The sandbox's first process (bwrap's init, pid 1 of the namespace), found just after the start. bwrap reports
    /// ansible's exit at once but its init waits for every process left in the namespace (an ssh ControlPersist
    /// master, a daemon a task started); <see cref="EndNamespace"/> kills it, and with it all of them.
    /// </summary>
    public async Task<int?> FindInitAsync(Process process)
    {
        if (Bwrap is null)
            return null;
        for (var i = 0; i < 200 && !process.HasExited; i++)
        {
            if (OnlyChild(process.Id) is { } init)
                return init;
            await Task.Delay(10);
        }
        return null;
    }

    /// <summary>SIGKILL to the namespace's pid 1, if it is still bwrap's: the kernel kills everything else in it.</summary>
    public static void EndNamespace(int? init)
    {
        if (init is not { } pid)
            return;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            if (stat.Contains("(bwrap)", StringComparison.Ordinal))
                NativeMethods.SignalGroup(pid, NativeMethods.SigKill);
        }
        catch (IOException)
        {
            // Gone already.
        }
    }

    private static int? OnlyChild(int pid)
    {
        try
        {
            var children = File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return children.Length == 1 ? int.Parse(children[0], CultureInfo.InvariantCulture) : null;
        }
        catch (IOException)
        {
            return null; // gone
        }
    }

    [LoggerMessage(EventId = 1120, Level = LogLevel.Information, Message = "Ansible runs are sandboxed with {Bwrap}")]
    private static partial void LogSandboxed(ILogger logger, string bwrap);

    [LoggerMessage(EventId = 1121, Level = LogLevel.Warning, Message = "Ansible runs are NOT sandboxed (Ansible:Sandbox is auto): {Problem}; install bubblewrap, or set Ansible:Sandbox to none to say this is intended")]
    private static partial void LogNotSandboxed(ILogger logger, string problem);
}

/// <summary>Decides the sandbox when the server starts, so a missing bwrap is known (and, for <c>bubblewrap</c>, fatal) before any run.</summary>
internal sealed class AnsibleSandboxProbe(AnsibleSandbox sandbox) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        sandbox.Probe();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
