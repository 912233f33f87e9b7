using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Opsgate.Server.Credentials;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Projects;

/// <summary>
/// The git cache under <c>{DataDir}/projects/</c>: one bare mirror per project (<c>&lt;id&gt;.git</c>), fetched on
/// demand, and one checkout per commit (<c>checkouts/&lt;commit&gt;/</c>) that every run of that commit reuses.
/// Fetches and checkouts of one project take its lock (in this process, and a file lock for other processes on
/// the same data dir); a checkout is written to a temporary directory and renamed into place, so a run never sees a
/// half-written one. Checkouts are read by ansible, never written. Old checkouts are pruned (ProjectCache.Prune.cs).
/// </summary>
internal sealed partial class ProjectCache(
    GitRunner git, CredentialStore credentials, ProjectStore projects, LocalRepositories local, IOptions<OpsgateOptions> opsgate, IOptions<ProjectOptions> options,
    PrivateDirectories directories, ILogger<ProjectCache> logger)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    private string Root => Path.GetFullPath(Path.Combine(opsgate.Value.DataDir, "projects"));
    private string KnownHosts => Path.Combine(Root, "known_hosts");
    private string Mirror(string projectId) => Path.Combine(Root, projectId + ".git");
    private string Checkout(string commit) => Path.Combine(Root, "checkouts", commit);

    /// <summary>
    /// <c>git ls-remote</c>: the repository answers, and a branch or tag <paramref name="gitRef"/> exists (a commit
    /// id cannot be asked for this way: the caller fetches to check it).
    /// </summary>
    public async Task CheckRemoteAsync(string url, string? gitRef, CredentialSecret? credential, CancellationToken ct)
    {
        Directory.CreateDirectory(Root);
        var listing = await git.RunAsync(["ls-remote", "--", url], credential, KnownHosts, ct);
        var refs = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).Where(p => p.Length == 2).Select(p => p[1]).ToHashSet(StringComparer.Ordinal);
        if (gitRef is null)
        {
            if (!refs.Contains("HEAD"))
                throw new GitException($"{url} has no HEAD (an empty repository, or its default branch is missing); give a ref");
            return;
        }
        if (refs.Contains("refs/heads/" + gitRef) || refs.Contains("refs/tags/" + gitRef) || refs.Contains(gitRef) || GitUrls.LooksLikeCommit(gitRef))
            return;
        throw new GitException($"'{gitRef}' is not a branch or tag of {url}", aboutRef: true);
    }

    /// <summary>Fetches the project's mirror now and returns the commit its ref resolves to.</summary>
    public async Task<string> SyncAsync(ProjectInfo project, CancellationToken ct)
    {
        // Also for projects stored before Ansible:LocalRepositoryRoots left their directory out.
        if (local.Refusal(project.GitRepo) is { } notAllowed)
            throw new GitException($"{project.GitRepo}: {notAllowed}") { Refused = true };
        var credential = await CredentialOfAsync(project, ct);
        using var held = await LockAsync(project.Id, ct);
        var mirror = Mirror(project.Id);
        if (!Directory.Exists(mirror))
        {
            // Initialised aside and renamed, so a crash never leaves a half-made mirror under the real name.
            var fresh = mirror + ".init-" + Guid.NewGuid().ToString("N")[..8];
            await git.RunAsync(["init", "--quiet", "--bare", "--", fresh], null, KnownHosts, ct);
            Directory.Move(fresh, mirror);
        }
        List<string> fetch = ["--git-dir=" + mirror, "fetch", "--quiet", "--force", "--prune", "--no-auto-gc", "--", project.GitRepo,
            "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
        if (project.Ref is null)
            fetch.Add("+HEAD:refs/opsgate/HEAD");
        else if (project.Ref.StartsWith("refs/", StringComparison.Ordinal) && !project.Ref.StartsWith("refs/heads/", StringComparison.Ordinal) && !project.Ref.StartsWith("refs/tags/", StringComparison.Ordinal))
            fetch.Add($"+{project.Ref}:{project.Ref}");
        await git.RunAsync(fetch, credential, KnownHosts, ct);
        return await ResolveAsync(mirror, project, ct)
            ?? throw new GitException($"'{project.Ref}' is not a branch, tag or commit of {project.GitRepo}", aboutRef: true);
    }

    /// <summary>
    /// The checkout of <paramref name="commit"/>, made from the project's mirror if no run made it before (or it was
    /// pruned). A run uses it while its job, which pinned the commit before asking, has not finished: pruning keeps it.
    /// </summary>
    public async Task<string> CheckoutAsync(ProjectInfo project, string commit, CancellationToken ct)
    {
        using var lease = await LeaseAsync(project, commit, ct);
        return lease.Path;
    }

    /// <summary>
    /// The checkout of <paramref name="commit"/>, kept from pruning by this process until the lease is disposed: for
    /// a reader that has no job pinning the commit (an inventory source).
    /// </summary>
    public async Task<CheckoutLease> LeaseAsync(ProjectInfo project, string commit, CancellationToken ct)
    {
        var target = Checkout(commit);
        var mirror = Mirror(project.Id);
        if (!Directory.Exists(target) && (!Directory.Exists(mirror) || await ResolveCommitAsync(mirror, commit, ct) is null))
            await SyncAsync(project, ct); // a pinned commit on a fresh data dir (another worker fetched it first)
        using var held = await LockAsync(project.Id, ct);
        for (var attempt = 1; ; attempt++)
        {
            var made = !Directory.Exists(target) && await MakeAsync(project, mirror, commit, target, ct);
            CheckoutLease lease;
            List<string> doomed;
            using (await LockAsync(CheckoutsLock, ct))
            {
                // Another project's prune may have taken it between the check above and this lock: make it again.
                if (!Directory.Exists(target))
                {
                    if (attempt < 3)
                        continue;
                    throw new IOException($"the checkout of {commit} was pruned as soon as it was made, {attempt} times");
                }
                lease = Use(commit, target);
                try
                {
                    RecordUse(project.Id, commit);
                    // Only a new checkout adds to the disk; pruning then keeps the count where it was.
                    doomed = made ? await SetAsideAsync(commit, ct) : [];
                }
                catch
                {
                    lease.Dispose();
                    throw;
                }
            }
            Delete(doomed); // renamed away under the lock; removing the files takes no lock
            return lease;
        }
    }

    /// <summary>git checkout into a work directory named after this process, renamed into place; false when another process made it first.</summary>
    private async Task<bool> MakeAsync(ProjectInfo project, string mirror, string commit, string target, CancellationToken ct)
    {
        if (await ResolveCommitAsync(mirror, commit, ct) is null)
            throw new GitException($"commit {commit} is no longer in {project.GitRepo}");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temp = directories.Create("checkout").FullName;
        // Named after this process: the start-up sweep removes those of processes that are gone (SweepLeftovers).
        var work = WorkDirectory();
        try
        {
            Directory.CreateDirectory(work);
            await git.RunAsync(["--git-dir=" + mirror, "--work-tree=" + work, "checkout", "--quiet", "--force", commit, "--", "."], null, KnownHosts, ct,
                indexFile: Path.Combine(temp, "index"));
            try
            {
                Directory.Move(work, target);
                return true;
            }
            catch (IOException) when (Directory.Exists(target))
            {
                // Another process on this data dir made it first: same commit, same files.
                return false;
            }
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    private string WorkDirectory() => Path.Combine(Root, "checkouts", WorkPrefix + directories.ProcessId + "-" + Guid.NewGuid().ToString("N"));

    private const string WorkPrefix = ".tmp-";

    /// <summary>Deletes half-made checkouts (<c>.tmp-&lt;process&gt;-*</c>) of processes of this data dir that are gone; at start-up.</summary>
    public void SweepLeftovers()
    {
        var checkouts = Path.Combine(Root, "checkouts");
        if (!Directory.Exists(checkouts))
            return;
        foreach (var work in new DirectoryInfo(checkouts).EnumerateDirectories(WorkPrefix + "*"))
        {
            var rest = work.Name[WorkPrefix.Length..];
            var dash = rest.IndexOf('-', StringComparison.Ordinal);
            // No process id: made by an older version, before it was named.
            if (dash > 0 && directories.IsLive(rest[..dash]))
                continue;
            try
            {
                work.Delete(recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Tried again at the next start.
            }
        }
    }

    /// <summary>
    /// Removes the project's mirror and its list of checkouts (checkouts are per commit and may serve other projects;
    /// the next prune removes those no other project keeps).
    /// </summary>
    public async Task ForgetAsync(string projectId, CancellationToken ct)
    {
        using var held = await LockAsync(projectId, ct);
        if (Directory.Exists(Mirror(projectId)))
            Directory.Delete(Mirror(projectId), recursive: true);
        using (await LockAsync(CheckoutsLock, ct))
            File.Delete(UsedList(projectId));
    }

    private async Task<CredentialSecret?> CredentialOfAsync(ProjectInfo project, CancellationToken ct) =>
        project.Credential is null ? null
            : await credentials.GetSecretAsync(project.Credential, ct) ?? throw new GitException($"credential '{project.Credential}' of project '{project.Name}' no longer exists");

    /// <summary>Branch first, then tag, then full ref, then commit id; null when none matches.</summary>
    private async Task<string?> ResolveAsync(string mirror, ProjectInfo project, CancellationToken ct)
    {
        if (project.Ref is not { } gitRef)
            return await ResolveCommitAsync(mirror, "refs/opsgate/HEAD", ct);
        foreach (var candidate in new[] { "refs/heads/" + gitRef, "refs/tags/" + gitRef })
        {
            if (await ResolveCommitAsync(mirror, candidate, ct) is { } commit)
                return commit;
        }
        return gitRef.StartsWith("refs/", StringComparison.Ordinal) || GitUrls.LooksLikeCommit(gitRef) ? await ResolveCommitAsync(mirror, gitRef, ct) : null;
    }

    private async Task<string?> ResolveCommitAsync(string mirror, string rev, CancellationToken ct)
    {
        try
        {
            var output = await git.RunAsync(["--git-dir=" + mirror, "rev-parse", "--quiet", "--verify", "--end-of-options", rev + "^{commit}"], null, KnownHosts, ct);
            return output.Trim();
        }
        catch (GitException)
        {
            return null;
        }
    }

    private async Task<IDisposable> LockAsync(string projectId, CancellationToken ct)
    {
        var gate = _locks.GetOrAdd(projectId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            Directory.CreateDirectory(Root);
            // Other processes on this data dir: an exclusive open is an advisory lock (flock) on Unix.
            var path = Path.Combine(Root, projectId + ".lock");
            while (true)
            {
                try
                {
                    var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    return new Held(gate, file);
                }
                catch (IOException)
                {
                    await Task.Delay(50, ct);
                }
            }
        }
        catch
        {
            gate.Release();
            throw;
        }
    }

    private sealed class Held(SemaphoreSlim gate, FileStream file) : IDisposable
    {
        public void Dispose()
        {
            file.Dispose();
            gate.Release();
        }
    }
}
