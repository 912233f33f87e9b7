using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
using Opsgate.Server.Credentials;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Projects;

/// <summary>git failed; the message is git's own, with every secret of the credential in use taken out.</summary>
/// <param name="AboutRef">The repository answered, but the ref is not in it.</param>
internal sealed class GitException(string message, bool aboutRef = false) : Exception(message)
{
    public bool AboutRef { get; } = aboutRef;

    /// <summary>A refusal by this server's settings (a local repository outside Ansible:LocalRepositoryRoots): trying again changes nothing.</summary>
    public bool Refused { get; init; }
}

/// <summary>The git command could not be started (missing, not executable): this server's setup, not the request.</summary>
internal sealed class GitUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Runs the <c>git</c> CLI: no shell, an environment built from nothing (no system or user config, no prompts,
/// only the file, ssh and https transports), a private 0700 directory per call as HOME. A credential never reaches
/// a command line: an SSH key is a 0600 file in that directory named by GIT_SSH_COMMAND; a token or password is an
/// <c>http.extraHeader</c> given through GIT_CONFIG_COUNT/KEY/VALUE. The directory is deleted when git is done.
/// </summary>
internal sealed class GitRunner(IOptions<ProjectOptions> options, PrivateDirectories directories)
{
    /// <summary>A span per git call (fetches can be the slow part of a run); only the subcommand is recorded, never an argument.</summary>
    private static readonly ActivitySource Tracing = new("Opsgate.Git");

    /// <param name="knownHosts">SSH known_hosts file (host keys are accepted on first use and checked ever after).</param>
    /// <param name="indexFile">GIT_INDEX_FILE, for a checkout from a bare repository.</param>
    public async Task<string> RunAsync(IReadOnlyList<string> args, CredentialSecret? credential, string knownHosts, CancellationToken ct, string? indexFile = null)
    {
        var o = options.Value;
        using var span = Tracing.StartActivity($"git {args[0]}", ActivityKind.Client);
        span?.SetTag("process.executable.name", "git");
        span?.SetTag("opsgate.git.command", args[0]);
        var dir = directories.Create("git"); // 0700
        var secrets = new List<string>();
        try
        {
            var psi = new ProcessStartInfo(o.GitCommand) { WorkingDirectory = dir.FullName };
            foreach (var arg in args)
                psi.ArgumentList.Add(arg);
            var env = psi.Environment;
            env.Clear();
            env["PATH"] = ChildProcess.SafePath;
            env["HOME"] = dir.FullName;
            env["LANG"] = env["LC_ALL"] = "C.UTF-8";
            env["GIT_CONFIG_NOSYSTEM"] = "1";
            env["GIT_CONFIG_GLOBAL"] = "/dev/null";
            env["GIT_TERMINAL_PROMPT"] = "0";
            env["GIT_ASKPASS"] = "/bin/false";
            env["GIT_ALLOW_PROTOCOL"] = "file:ssh:https";
            if (indexFile is not null)
                env["GIT_INDEX_FILE"] = indexFile;

            // GIT_SSH_COMMAND is run by git through sh: only paths Opsgate made go into it, single-quoted.
            var ssh = new StringBuilder("ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new");
            ssh.Append(CultureInfo.InvariantCulture, $" -o ConnectTimeout={(int)Math.Ceiling(o.ConnectTimeout.TotalSeconds)} -o UserKnownHostsFile={Quote(knownHosts)}");
            var configs = new List<(string Key, string Value)>();
            switch (credential)
            {
                case { Info.Kind: CredentialKinds.SshKey }:
                    var key = Path.Combine(dir.FullName, "id_key");
                    await WritePrivateAsync(key, SshKeyText(credential.Secret), ct);
                    ssh.Append(" -i ").Append(Quote(key)).Append(" -o IdentitiesOnly=yes");
                    break;
                case { Info.Kind: CredentialKinds.Token or CredentialKinds.Password }:
                    var header = AuthorizationHeader(credential);
                    secrets.Add(credential.Secret);
                    secrets.Add(header);
                    configs.Add(("http.extraHeader", "Authorization: " + header));
                    break;
            }
            env["GIT_SSH_COMMAND"] = ssh.ToString();
            env["GIT_CONFIG_COUNT"] = configs.Count.ToString(CultureInfo.InvariantCulture);
            for (var i = 0; i < configs.Count; i++)
            {
                env[$"GIT_CONFIG_KEY_{i}"] = configs[i].Key;
                env[$"GIT_CONFIG_VALUE_{i}"] = configs[i].Value;
            }

            ChildProcessResult result;
            try
            {
                result = await ChildProcess.RunAsync(psi, o.GitTimeout, ct);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new GitUnavailableException($"git cannot be started: '{o.GitCommand}' (Ansible:GitCommand): {e.Message}", e);
            }
            span?.SetTag("process.exit.code", result.ExitCode);
            if (result.TimedOut)
                throw Failed(span, new GitException($"git {args[0]} did not finish within {o.GitTimeout} (Ansible:GitTimeout)"));
            if (result.ExitCode != 0)
            {
                var message = Scrub(result.Stderr, secrets, dir.FullName);
                throw Failed(span, new GitException(message.Length == 0 ? $"git {args[0]} failed with exit code {result.ExitCode}" : message));
            }
            return result.Stdout;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Marks the span failed with the message users see (already scrubbed of secrets) and returns the exception to throw.</summary>
    private static GitException Failed(Activity? span, GitException e)
    {
        span?.SetStatus(ActivityStatusCode.Error, e.Message);
        return e;
    }

    /// <summary>Bearer for a bare token; Basic for a token or password with a username (what GitHub, GitLab and Gitea take over https).</summary>
    private static string AuthorizationHeader(CredentialSecret credential) =>
        credential.Info.Username is { Length: > 0 } user
            ? "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{credential.Secret}"))
            : "Bearer " + credential.Secret;

    /// <summary>git's stderr on one line, without secrets or the private directory's path.</summary>
    private static string Scrub(string stderr, IEnumerable<string> secrets, string privateDir)
    {
        var text = string.Join(' ', stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        foreach (var secret in secrets.Where(s => s.Length > 0).OrderByDescending(s => s.Length))
            text = text.Replace(secret, "[REDACTED]", StringComparison.Ordinal);
        text = text.Replace(privateDir, "<private>", StringComparison.Ordinal);
        return text.Length > 2000 ? text[..2000] + "..." : text;
    }

    /// <summary>OpenSSH wants Unix line ends and a final newline on a private key.</summary>
    internal static string SshKeyText(string key)
    {
        var text = key.Replace("\r\n", "\n", StringComparison.Ordinal).Trim();
        return text + "\n";
    }

    internal static async Task WritePrivateAsync(string path, string content, CancellationToken ct)
    {
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using var stream = new FileStream(path, fileOptions);
        await using var text = new StreamWriter(stream);
        await text.WriteAsync(content.AsMemory(), ct);
    }

    private static string Quote(string path) =>
        path.Contains('\'', StringComparison.Ordinal) ? throw new GitException($"path {path} contains a quote; choose another DataDir") : $"'{path}'";
}
