using System.Diagnostics;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>A real bare git repository made by the test (git init --bare), with a work tree to commit, tag and push from.</summary>
public sealed class GitRepo : IDisposable
{
    private readonly TempDir _dir = new();

    private GitRepo()
    {
    }

    /// <summary>The bare repository: what a project's git_repo names (as a path, file:// or over ssh).</summary>
    public string Bare => Path.Combine(_dir.Path, "origin.git");

    private string Work => Path.Combine(_dir.Path, "work");

    /// <summary>The server argument that allows this repository (Ansible:LocalRepositoryRoots, here its own directory).</summary>
    public string AllowArg => $"--Ansible:LocalRepositoryRoots:0={_dir.Path}";

    public static async Task<GitRepo> CreateAsync()
    {
        var repo = new GitRepo();
        await repo.GitAsync(repo._dir.Path, "init", "--quiet", "--bare", "--initial-branch=main", repo.Bare);
        await repo.GitAsync(repo._dir.Path, "init", "--quiet", "--initial-branch=main", repo.Work);
        return repo;
    }

    /// <summary>Writes the files, commits them on main, pushes, and returns the commit id. A file starting with "#!" is made executable (a script).</summary>
    public async Task<string> CommitAsync(string message, params (string Path, string Text)[] files)
    {
        foreach (var (path, text) in files)
        {
            var full = Path.Combine(Work, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, text);
            if (text.StartsWith("#!", StringComparison.Ordinal))
                File.SetUnixFileMode(full, File.GetUnixFileMode(full) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        return await CommitWorkAsync(message);
    }

    /// <summary>Commits a symbolic link at <paramref name="path"/> to <paramref name="target"/> (as git stores links), pushes, and returns the commit id.</summary>
    public async Task<string> CommitLinkAsync(string message, string path, string target)
    {
        var full = Path.Combine(Work, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.CreateSymbolicLink(full, target);
        return await CommitWorkAsync(message);
    }

    private async Task<string> CommitWorkAsync(string message)
    {
        await GitAsync(Work, "add", "--all");
        await GitAsync(Work, "commit", "--quiet", "-m", message);
        await GitAsync(Work, "push", "--quiet", Bare, "main");
        return (await GitAsync(Work, "rev-parse", "HEAD")).Trim();
    }

    /// <summary>An annotated tag on the current commit, pushed.</summary>
    public async Task TagAsync(string tag)
    {
        await GitAsync(Work, "tag", "-a", "-m", tag, tag);
        await GitAsync(Work, "push", "--quiet", Bare, tag);
    }

    private async Task<string> GitAsync(string cwd, params string[] args)
    {
        var psi = new ProcessStartInfo("git") { WorkingDirectory = cwd, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-c", "user.name=Test", "-c", "user.email=test@example.com" }.Concat(args))
            psi.ArgumentList.Add(arg);
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        psi.Environment["HOME"] = _dir.Path;
        using var process = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"git {string.Join(' ', args)}: {await stderr}");
        return await stdout;
    }

    public void Dispose() => _dir.Dispose();
}
