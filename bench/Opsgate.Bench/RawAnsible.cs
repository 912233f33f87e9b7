using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Opsgate.Bench;

/// <summary>One host's line of ansible's PLAY RECAP.</summary>
internal sealed record RecapLine(int Ok, int Changed, int Unreachable, int Failed, int Skipped);

/// <summary>A raw ansible-playbook that ran to its end: wall time, exit code, its stdout and stderr.</summary>
internal sealed record RawRun(double Seconds, int ExitCode, string Stdout, string Stderr);

/// <summary>
/// The baseline: <c>ansible-playbook</c> run directly, the way Opsgate runs it (src/Opsgate.Server/Ansible/AnsibleProcess.cs)
/// minus Opsgate's callback plugin and its sandbox (the baseline is ansible itself): through <c>setsid --wait</c>, no shell, stdin closed, in a private 0700 directory that
/// holds the inventory, an empty <c>ansible.cfg</c>, HOME, a local temp dir and an SSH control-path dir, with the environment
/// built from nothing. The environment below copies <c>AnsibleProcess.ScrubEnvironment</c> and the ANSIBLE_* settings of
/// <c>AnsibleProcess.Start</c> at their defaults (the server runs as a separate process, so they cannot be called from here):
/// keep the two in step.
/// </summary>
internal static partial class RawAnsible
{
    /// <summary>ChildProcess.SafePath.</summary>
    private const string SafePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>A run directory as AnsibleProcess prepares one; <c>inventory.yml</c> holds <paramref name="inventory"/>.</summary>
    public static string Prepare(string inventory)
    {
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("ansible-playbook runs on Unix only");
        var dir = Directory.CreateTempSubdirectory("opsgate-bench-raw-").FullName; // 0700
        foreach (var sub in new[] { "home", "tmp", "cp" })
            Directory.CreateDirectory(Path.Combine(dir, sub), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(dir, "inventory.yml"), inventory);
        File.WriteAllText(Path.Combine(dir, "ansible.cfg"), "# written by opsgate-bench; settings come from the environment\n");
        return dir;
    }

    public static void Remove(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temp dir is harmless.
        }
    }

    /// <summary>Starts <c>setsid --wait ansible-playbook PLAYBOOK --inventory=DIR/inventory.yml --forks=N</c> in <paramref name="dir"/>.</summary>
    public static Process Start(string dir, string playbook, int forks)
    {
        var psi = new ProcessStartInfo
        {
            FileName = FindOnSafePath("setsid"),
            WorkingDirectory = dir,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "--wait", "ansible-playbook", playbook, "--inventory=" + Path.Combine(dir, "inventory.yml"), "--forks=" + forks.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(arg);
        var env = psi.Environment;
        // AnsibleProcess.ScrubEnvironment:
        env.Clear();
        env["PATH"] = SafePath;
        env["HOME"] = Path.Combine(dir, "home");
        env["LANG"] = env["LC_ALL"] = "C.UTF-8";
        env["PYTHONUNBUFFERED"] = "1";
        env["ANSIBLE_CONFIG"] = Path.Combine(dir, "ansible.cfg");
        env["ANSIBLE_LOCAL_TEMP"] = Path.Combine(dir, "tmp");
        env["ANSIBLE_NOCOLOR"] = "1";
        env["ANSIBLE_INVENTORY_ENABLED"] = "yaml";
        env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True";
        // AnsibleProcess.Start with the default Ansible options, without ANSIBLE_CALLBACK_PLUGINS / ANSIBLE_CALLBACKS_ENABLED:
        env["ANSIBLE_RETRY_FILES_ENABLED"] = "False";
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True";
        env["ANSIBLE_TIMEOUT"] = "10";
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = Path.Combine(dir, "cp");
        env["ANSIBLE_SSH_ARGS"] = "-C -o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=5 -o ServerAliveCountMax=3";
        var process = Process.Start(psi) ?? throw new BenchException("setsid ansible-playbook did not start");
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Runs the playbook to its end; the wall time is from just before the process starts to its exit with its output read.</summary>
    public static async Task<RawRun> RunAsync(string dir, string playbook, int forks, TimeSpan limit, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var process = Start(dir, playbook, forks);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(limit);
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(bound.Token);
            var stderr = process.StandardError.ReadToEndAsync(bound.Token);
            await Task.WhenAll(stdout, stderr, process.WaitForExitAsync(bound.Token));
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            return new RawRun(seconds, process.ExitCode, await stdout, await stderr);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new BenchException($"raw ansible-playbook did not finish within {limit.TotalMinutes:0} min");
        }
        finally
        {
            Kill(process);
        }
    }

    /// <summary>
    /// Starts the playbook and returns the seconds until the first task result line on stdout (<c>ok: [</c>, <c>changed: [</c>,
    /// <c>skipping: [</c>, <c>fatal: [</c>), or null if none came within <paramref name="cap"/>; then kills the run.
    /// </summary>
    public static async Task<(double? Seconds, string LastLines)> FirstResultAsync(string dir, string playbook, int forks, TimeSpan cap, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var process = Start(dir, playbook, forks);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(cap);
        var tail = new Queue<string>();
        var stderr = DrainAsync(process.StandardError, tail, bound.Token);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(bound.Token) is { } line)
            {
                Keep(tail, line);
                if (IsTaskResult(line))
                    return (Stopwatch.GetElapsedTime(started).TotalSeconds, Tail(tail));
            }
            return (null, Tail(tail)); // ended without a task result
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return (null, Tail(tail));
        }
        finally
        {
            Kill(process);
            await bound.CancelAsync();
            try
            {
                await stderr;
            }
            catch (OperationCanceledException)
            {
                // Stopped reading.
            }
        }
    }

    public static bool IsTaskResult(string line) =>
        line.StartsWith("ok: [", StringComparison.Ordinal) || line.StartsWith("changed: [", StringComparison.Ordinal)
        || line.StartsWith("skipping: [", StringComparison.Ordinal) || line.StartsWith("fatal: [", StringComparison.Ordinal);

    /// <summary>The PLAY RECAP that ansible printed, by host; empty if there is none.</summary>
    public static Dictionary<string, RecapLine> Recap(string stdout)
    {
        var recap = new Dictionary<string, RecapLine>(StringComparer.Ordinal);
        var at = stdout.LastIndexOf("PLAY RECAP", StringComparison.Ordinal);
        if (at < 0)
            return recap;
        foreach (Match m in RecapPattern().Matches(stdout[at..]))
        {
            int N(int g) => int.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);
            recap[m.Groups[1].Value] = new RecapLine(N(2), N(3), N(4), N(5), N(6));
        }
        return recap;
    }

    [GeneratedRegex(@"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", RegexOptions.Multiline)]
    private static partial Regex RecapPattern();

    /// <summary>The whole process tree: setsid execs ansible-playbook, whose forks are its children.</summary>
    private static void Kill(Process process)
    {
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
    }

    private static async Task DrainAsync(StreamReader reader, Queue<string> tail, CancellationToken ct)
    {
        while (await reader.ReadLineAsync(ct) is { } line)
            Keep(tail, line);
    }

    private static void Keep(Queue<string> tail, string line)
    {
        lock (tail)
        {
            tail.Enqueue(line.Length > 300 ? line[..300] : line);
            if (tail.Count > 10)
                tail.Dequeue();
        }
    }

    private static string Tail(Queue<string> tail)
    {
        lock (tail)
            return string.Join(" | ", tail);
    }

    private static string FindOnSafePath(string name) =>
        SafePath.Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
        ?? throw new BenchException($"'{name}' was not found in {SafePath}");

    /// <summary>Ansible YAML: one group <c>bench</c> whose hosts are <paramref name="hosts"/> lines, with <paramref name="vars"/> as its vars.</summary>
    public static string GroupInventory(IEnumerable<string> hosts, IReadOnlyDictionary<string, string>? vars)
    {
        var text = new StringBuilder("all:\n  children:\n    bench:\n      hosts:\n");
        foreach (var host in hosts)
            text.Append("        ").Append(host).Append(":\n");
        if (vars is not null)
        {
            text.Append("      vars:\n");
            foreach (var (name, value) in vars)
                text.Append("        ").Append(name).Append(": ").Append(value).Append('\n');
        }
        return text.ToString();
    }
}
