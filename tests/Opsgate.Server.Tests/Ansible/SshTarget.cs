using System.Diagnostics;
using System.Net.Sockets;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// A real OpenSSH server on a loopback port (RECIPES.md "SSH targets for Ansible"): its own host key, one client key,
/// in a private temp dir, run in the foreground (-D) as this test's child and killed by its pid at the end.
/// </summary>
public sealed class SshTarget : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Process _sshd;

    private SshTarget(TempDir dir, Process sshd, int port)
    {
        _dir = dir;
        _sshd = sshd;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Processes sshd forked that are still alive (one per open connection).</summary>
    public IReadOnlyList<int> Sessions()
    {
        var children = File.ReadAllText($"/proc/{_sshd.Id}/task/{_sshd.Id}/children");
        return children.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToList();
    }

    public string ClientKey => Path.Combine(_dir.Path, "client");

    /// <summary>Inventory host vars that reach this server as root with the client key.</summary>
    public string HostVars =>
        $"{{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {Port}, ansible_user: root, ansible_ssh_private_key_file: '{ClientKey}', " +
        "ansible_python_interpreter: /usr/bin/python3, ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'}";

    /// <summary>A new ed25519 private key (OpenSSH format) made in <paramref name="dir"/>, for a credential no machine needs to accept.</summary>
    public static async Task<string> NewKeyAsync(TempDir dir)
    {
        var file = Path.Combine(dir.Path, "key-" + Guid.NewGuid().ToString("N")[..8]);
        await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", file);
        return await File.ReadAllTextAsync(file);
    }

    public static async Task<SshTarget> StartAsync()
    {
        var dir = new TempDir();
        File.SetUnixFileMode(dir.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory("/run/sshd");
        await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(dir.Path, "hostkey"));
        await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(dir.Path, "client"));
        var authorized = Path.Combine(dir.Path, "authorized_keys");
        File.Copy(Path.Combine(dir.Path, "client.pub"), authorized);
        File.SetUnixFileMode(authorized, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var config = Path.Combine(dir.Path, "sshd_config");
        await File.WriteAllTextAsync(config, $"""
            HostKey {dir.Path}/hostkey
            AuthorizedKeysFile {authorized}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            Subsystem sftp /usr/lib/openssh/sftp-server
            """);
        var port = AnsibleFixture.ClosedPort();
        var psi = new ProcessStartInfo("/usr/sbin/sshd") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-D", "-f", config, "-o", $"ListenAddress=127.0.0.1:{port}", "-o", $"PidFile={dir.Path}/sshd.pid", "-E", $"{dir.Path}/sshd.log" })
            psi.ArgumentList.Add(arg);
        var sshd = Process.Start(psi)!;
        var target = new SshTarget(dir, sshd, port);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(sshd.HasExited, "sshd exited: " + await ReadLogAsync(dir));
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return target;
            }
            catch (SocketException) when (watch.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(50);
            }
        }
    }

    private static async Task<string> ReadLogAsync(TempDir dir)
    {
        var log = Path.Combine(dir.Path, "sshd.log");
        return File.Exists(log) ? await File.ReadAllTextAsync(log) : "(no log)";
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"{file} failed: {await stderr}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_sshd.HasExited)
        {
            // Kills the listener only; sessions it forked end when their connections close.
            _sshd.Kill();
            await _sshd.WaitForExitAsync();
        }
        _sshd.Dispose();
        _dir.Dispose();
    }
}
