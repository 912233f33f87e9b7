using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Ansible;

/// <summary>One playbook run, as the ansible.run step asks for it.</summary>
/// <param name="Playbook">Absolute path of the playbook file.</param>
/// <param name="Inventory">Ansible YAML inventory text.</param>
/// <param name="ExtraVars">Written to a 0600 file and passed as <c>-e @file</c>, never on the command line.</param>
internal sealed record AnsibleRunRequest(
    string JobId, string Owner, int StepOrder, string StepName, string Playbook, string Inventory, string? Limit, JsonObject? ExtraVars,
    bool Check, bool Diff, int? Forks, string? Tags, TimeSpan Timeout, AnsibleMachineCredential? Credential = null)
{
    /// <summary>Values masked as [REDACTED] in the run's events and output: the job's secret parameters and extra vars.</summary>
    public IReadOnlyList<string> Masked { get; init; } = [];
}

/// <summary>The SSH key (OpenSSH text) and optional user a run reaches its machines with: loaded into the run's own <see cref="SshAgent"/>, never written to a file.</summary>
internal sealed record AnsibleMachineCredential(string PrivateKey, string? User);

/// <param name="ExitCode">ansible-playbook's exit code (after a stop: whatever the signal left).</param>
/// <param name="Stopped">Why the run was stopped before it ended by itself, or null.</param>
/// <param name="StderrTail">The last lines ansible wrote to stderr, for the step's error.</param>
internal sealed record AnsibleRunResult(int ExitCode, AnsibleStop? Stopped, HostTally Hosts, string StderrTail, long Events, bool LeaseLost);

internal enum AnsibleStop { Cancelled, TimedOut, LeaseLost, WriteFailed }

/// <summary>
/// Runs <c>ansible-playbook</c> as a child process, without a shell, in a private 0700 directory that holds the
/// run's inventory, extra vars, the callback plugin, the socket it reports to and the socket of the run's ssh-agent.
/// The environment is built from nothing: only what ansible needs. Where the machine allows it the process runs in a
/// bubblewrap sandbox (<see cref="AnsibleSandbox"/>). It leads a process group of its own, so a stop reaches its forks
/// and ssh children: SIGINT, then SIGTERM, then SIGKILL, each after a grace period. Events from the callback and
/// ansible's own output go to the job's event stream in batches (one transaction per batch) through
/// <see cref="AnsibleEventWriter"/>.
/// </summary>
internal sealed partial class AnsibleProcess(
    JobStore store, IOptions<AnsibleOptions> options, PrivateDirectories directories, AnsibleSandbox sandbox, ILogger<AnsibleProcess> logger)
{

    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(5);

    public async Task<AnsibleRunResult> RunAsync(AnsibleRunRequest run, CancellationToken ct)
    {
        var o = options.Value;
        var dir = directories.Create("ansible"); // 0700
        // A Unix socket's path has at most 107 bytes (ssh adds 17 to a control socket's while making it): under a
        // long DataDir the sockets, which hold no secrets, go to a short private directory in /tmp instead.
        var sockets = System.Text.Encoding.UTF8.GetByteCount(dir.FullName) > MaxSocketParentLength ? Directory.CreateTempSubdirectory("opsgate-sock-") : null; // 0700 on Unix
        try
        {
            var files = await PrepareAsync(dir.FullName, sockets?.FullName ?? dir.FullName, run, ct);
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(files.Socket));
            listener.Listen(1);

            // The key lives in the agent for the run's time limit at most; the agent dies with this scope.
            await using var agent = run.Credential is null ? null : await SshAgent.StartAsync(files.Agent, run.Credential.PrivateKey, run.Timeout + TimeSpan.FromMinutes(1), ct);
            using var writer = new AnsibleEventWriter(store, run, o.EventBatchSize, o.MaxOutputBytes);
            using var process = Start(files, run, o, agent);
            LogStarted(logger, run.JobId, run.StepName, process.Id);
            process.StandardInput.Close(); // nothing may wait on a prompt
            var init = await sandbox.FindInitAsync(process);

            using var drain = new CancellationTokenSource();
            using var accepting = CancellationTokenSource.CreateLinkedTokenSource(drain.Token);
            var stderrTail = new Queue<string>();
            var readers = Task.WhenAll(
                PumpOutputAsync(process.StandardOutput, "stdout", writer, null, drain.Token),
                PumpOutputAsync(process.StandardError, "stderr", writer, stderrTail, drain.Token),
                PumpEventsAsync(listener, writer, accepting.Token, drain.Token));

            AnsibleStop? stopped = null;
            using var timeout = new CancellationTokenSource(run.Timeout);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token, writer.StopToken);
            try
            {
                await process.WaitForExitAsync(stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                stopped = writer.LeaseLost ? AnsibleStop.LeaseLost
                    : ct.IsCancellationRequested ? AnsibleStop.Cancelled
                    : timeout.IsCancellationRequested ? AnsibleStop.TimedOut : AnsibleStop.WriteFailed;
                await StopAsync(process, run, o);
            }

            // Before draining: what is left of the run could hold its output pipes open (in a sandbox, bwrap's init
            // waits for every process in it).
            await CloseSshMastersAsync(files.ControlPath);
            AnsibleSandbox.EndNamespace(init);

            // The plugin connects when ansible starts; a run that ended before loading callbacks (bad arguments,
            // a broken playbook) has no connection waiting, and the accept ends now rather than at the drain limit.
            if (!listener.Poll(0, SelectMode.SelectRead))
                await accepting.CancelAsync();
            // The output pipes and the socket end when ansible and its children are gone; a grandchild that
            // kept a pipe open must not hold the step, so the readers get a bounded time to drain.
            drain.CancelAfter(DrainLimit);
            try
            {
                await readers;
            }
            catch (OperationCanceledException) when (drain.IsCancellationRequested)
            {
                LogDrainCut(logger, run.JobId);
            }
            writer.Complete();
            await writer.Completion;
            LogExited(logger, run.JobId, process.ExitCode, writer.Events);
            lock (stderrTail)
                return new AnsibleRunResult(process.ExitCode, stopped, writer.Tally, string.Join('\n', stderrTail), writer.Events, writer.LeaseLost);
        }
        finally
        {
            foreach (var used in new[] { dir, sockets })
            {
                try
                {
                    used?.Delete(recursive: true);
                }
                catch (IOException e)
                {
                    LogCleanupFailed(logger, used!.FullName, e);
                }
            }
        }
    }

    private sealed record RunFiles(string Directory, string SocketDirectory, string Socket, string Agent, string Inventory, string? ExtraVars, string CallbackDir, string Config,
        string Home, string Temp, string ControlPath);

    /// <summary>The longest directory the sockets fit in: <c>cp/</c> + ansible's 10-character control socket name + ssh's 17-byte suffix, in 107 bytes (<c>agent.sock</c> and <c>events.sock</c> are shorter).</summary>
    private const int MaxSocketParentLength = 76;

    private static async Task<RunFiles> PrepareAsync(string dir, string socketDir, AnsibleRunRequest run, CancellationToken ct)
    {
        // ansible-playbook runs on Unix only; the guards tell the platform analyzer so.
        string Sub(string name, string? parent = null)
        {
            if (OperatingSystem.IsWindows())
                throw new PlatformNotSupportedException("ansible-playbook runs on Unix only");
            var path = Path.Combine(parent ?? dir, name);
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return path;
        }
        async Task<string> Private(string name, string content)
        {
            if (OperatingSystem.IsWindows())
                throw new PlatformNotSupportedException("ansible-playbook runs on Unix only");
            var path = Path.Combine(dir, name);
            await using (var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            await using (var text = new StreamWriter(stream))
                await text.WriteAsync(content.AsMemory(), ct);
            return path;
        }

        var callbacks = Sub("callback_plugins");
        await using (var plugin = typeof(AnsibleProcess).Assembly.GetManifestResourceStream(AnsibleFeature.CallbackResource)
                     ?? throw new InvalidOperationException("the Ansible callback plugin is missing from the build"))
        await using (var file = File.Create(Path.Combine(callbacks, "opsgate_events.py")))
            await plugin.CopyToAsync(file, ct);
        return new RunFiles(
            dir,
            socketDir,
            Path.Combine(socketDir, "events.sock"),
            Path.Combine(socketDir, "agent.sock"),
            await Private("inventory.yml", run.Inventory),
            run.ExtraVars is null ? null : await Private("extra_vars.json", run.ExtraVars.ToJsonString()),
            callbacks,
            // An empty config of its own: nothing from /etc/ansible or the working directory applies.
            await Private("ansible.cfg", "# written by Opsgate; settings come from the environment\n"),
            Sub("home"),
            Sub("tmp"),
            Sub("cp", socketDir));
    }

    private Process Start(RunFiles files, AnsibleRunRequest run, AnsibleOptions o, SshAgent? agent)
    {
        var psi = new ProcessStartInfo
        {
            FileName = o.PlaybookCommand,
            WorkingDirectory = files.Directory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add(run.Playbook);
        psi.ArgumentList.Add("--inventory=" + files.Inventory);
        if (files.ExtraVars is not null)
            psi.ArgumentList.Add("--extra-vars=@" + files.ExtraVars);
        // The = form: a value starting with '-' cannot be taken for an option.
        if (!string.IsNullOrEmpty(run.Limit))
            psi.ArgumentList.Add("--limit=" + run.Limit);
        if (!string.IsNullOrEmpty(run.Tags))
            psi.ArgumentList.Add("--tags=" + run.Tags);
        if (run.Forks is { } forks)
            psi.ArgumentList.Add("--forks=" + forks.ToString(CultureInfo.InvariantCulture));
        if (run.Credential?.User is { } user)
            psi.ArgumentList.Add("--user=" + user);
        if (run.Check)
            psi.ArgumentList.Add("--check");
        if (run.Diff)
            psi.ArgumentList.Add("--diff");

        var env = psi.Environment;
        ScrubEnvironment(env, files.Home, files.Config, files.Temp);
        env["ANSIBLE_CALLBACK_PLUGINS"] = files.CallbackDir;
        env["ANSIBLE_CALLBACKS_ENABLED"] = "opsgate_events";
        env["OPSGATE_EVENTS_SOCKET"] = files.Socket;
        env["ANSIBLE_RETRY_FILES_ENABLED"] = "False";
        env["ANSIBLE_HOST_KEY_CHECKING"] = o.HostKeyChecking ? "True" : "False";
        env["ANSIBLE_TIMEOUT"] = ((int)Math.Ceiling(o.ConnectTimeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = files.ControlPath;
        env["ANSIBLE_SSH_ARGS"] = string.Create(CultureInfo.InvariantCulture,
            $"-C -o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval={(int)Math.Ceiling(o.SshServerAliveInterval.TotalSeconds)} -o ServerAliveCountMax={o.SshServerAliveCountMax}");
        // No --private-key: ssh offers the agent's key to every host, and a host's own ansible_ssh_private_key_file
        // besides.
        if (agent is not null)
            env["SSH_AUTH_SOCK"] = agent.Socket;
        sandbox.Wrap(psi, new SandboxPaths(files.Directory, files.SocketDirectory == files.Directory ? null : files.SocketDirectory, run.Playbook));
        return Process.Start(psi) ?? throw new InvalidOperationException("ansible-playbook did not start");
    }

    /// <summary>
    /// The environment every ansible process runs with, built from nothing: the server's own variables (secrets,
    /// proxies, ANSIBLE_* settings) never reach it. Inventories are YAML; one ansible cannot parse is an error, not a
    /// run over no hosts.
    /// </summary>
    internal static void ScrubEnvironment(IDictionary<string, string?> env, string home, string config, string temp)
    {
        env.Clear();
        env["PATH"] = ChildProcess.SafePath;
        env["HOME"] = home;
        env["LANG"] = env["LC_ALL"] = "C.UTF-8"; // ansible refuses to run without a UTF-8 locale
        env["PYTHONUNBUFFERED"] = "1";
        env["ANSIBLE_CONFIG"] = config;
        env["ANSIBLE_LOCAL_TEMP"] = temp;
        env["ANSIBLE_NOCOLOR"] = "1";
        env["ANSIBLE_INVENTORY_ENABLED"] = "yaml";
        env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True";
    }

    /// <summary>SIGINT (ansible stops like on Ctrl-C), then SIGTERM, then SIGKILL, to the whole process group.</summary>
    private async Task StopAsync(Process process, AnsibleRunRequest run, AnsibleOptions o)
    {
        foreach (var (signal, grace) in new[] { (NativeMethods.SigInt, o.InterruptGrace), (NativeMethods.SigTerm, o.TerminateGrace), (NativeMethods.SigKill, Timeout.InfiniteTimeSpan) })
        {
            // A sandbox not set up yet has no group: the next step, or in the end a kill of bwrap, which takes its
            // pid namespace down with it.
            var group = sandbox.ProcessGroup(process);
            LogSignal(logger, run.JobId, signal, group ?? process.Id);
            if (group is null)
            {
                if (signal == NativeMethods.SigKill)
                    NativeMethods.SignalGroup(process.Id, signal);
            }
            else if (!NativeMethods.SignalGroup(group.Value, signal))
                break;
            using var wait = new CancellationTokenSource(grace);
            try
            {
                await process.WaitForExitAsync(wait.Token);
                break;
            }
            catch (OperationCanceledException) when (wait.IsCancellationRequested)
            {
                // Not gone yet: the next signal.
            }
        }
        await process.WaitForExitAsync(CancellationToken.None);
        // Forks that outlived ansible itself (in a sandbox they died with its pid namespace).
        if (sandbox.Bwrap is null)
            NativeMethods.SignalGroup(process.Id, NativeMethods.SigKill);
    }

    /// <summary>
    /// ssh's ControlPersist masters detach into their own session and would outlive the run by a minute, holding
    /// connections to every host; each is told to exit through its control socket.
    /// </summary>
    private async Task CloseSshMastersAsync(string controlDir)
    {
        foreach (var socket in Directory.EnumerateFileSystemEntries(controlDir))
        {
            try
            {
                var psi = new ProcessStartInfo(ChildProcess.FindOnSafePath("ssh"));
                foreach (var arg in new[] { "-O", "exit", "-o", "ControlPath=" + socket, "opsgate-control-master" })
                    psi.ArgumentList.Add(arg);
                psi.Environment.Clear();
                psi.Environment["PATH"] = ChildProcess.SafePath;
                var ssh = await ChildProcess.RunAsync(psi, TimeSpan.FromSeconds(5), CancellationToken.None);
                if (ssh.TimedOut)
                    throw new IOException("ssh -O exit did not finish within 5 s");
                if (ssh.ExitCode != 0)
                    throw new IOException($"ssh -O exit: {ssh.Stderr.Trim()}");
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or System.ComponentModel.Win32Exception or IOException)
            {
                LogMasterNotClosed(logger, socket, e);
            }
        }
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Job {JobId} step {Step}: ansible-playbook started (pid {Pid})")]
    private static partial void LogStarted(ILogger logger, string jobId, string step, int pid);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Job {JobId}: ansible-playbook exited with {ExitCode} after {Events} events")]
    private static partial void LogExited(ILogger logger, string jobId, int exitCode, long events);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Job {JobId}: stopping ansible-playbook with signal {Signal} (process group {Pid})")]
    private static partial void LogSignal(ILogger logger, string jobId, int signal, int pid);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "Job {JobId}: ansible's output was still open after it exited; stopped reading")]
    private static partial void LogDrainCut(ILogger logger, string jobId);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Could not close the ssh control master {Socket}; it exits by itself after ControlPersist")]
    private static partial void LogMasterNotClosed(ILogger logger, string socket, Exception exception);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Could not delete the Ansible run directory {Directory}")]
    private static partial void LogCleanupFailed(ILogger logger, string directory, Exception exception);
}
