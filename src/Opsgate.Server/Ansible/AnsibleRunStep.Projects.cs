using System.Text.Json.Nodes;
using Opsgate.Server.Access;
using Opsgate.Server.Credentials;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible;

/// <summary>The playbook of a run from a project (git), and the machine credential of a run.</summary>
internal sealed partial class AnsibleRunStep
{
    /// <summary>
    /// The <c>project</c> and <c>credential</c> inputs name things that exist (and the credential is an SSH key), and
    /// the project's playbook exists at the commit its ref resolves to: checked at submit, so a typo is a 400 rather
    /// than a failed job.
    /// </summary>
    public async Task<(string Input, string Message)?> CheckProjectAsync(JsonObject inputs, CancellationToken ct)
    {
        ProjectInfo? source = null;
        if (inputs["project"]?.GetValue<string>() is { } project)
        {
            if (!Validate.IsDnsLabel(project) || (source = await projects.FindAsync(project, ct)) is null)
                return ("project", $"project '{project}' does not exist");
            if (inputs["playbook_yaml"] is not null)
                return ("playbook_yaml", "a run from a project takes playbook (a path in the project), not playbook_yaml");
        }
        if (inputs["credential"]?.GetValue<string>() is { } credential)
        {
            if (!Validate.IsDnsLabel(credential) || await credentials.FindAsync(credential, ct) is not { } found)
                return ("credential", $"credential '{credential}' does not exist");
            if (found.Kind != CredentialKinds.SshKey)
                return ("credential", $"credential '{credential}' is a {found.Kind}; the machines of a playbook run take an ssh_key");
        }
        // A shard's or a retry's project_commit is the one its original pinned, checked when it runs.
        if (source is not null && inputs["playbook"]?.GetValue<string>() is { } playbook && inputs["project_commit"] is null
            && await PlaybookProblemAsync(source, playbook, ct) is { } problem)
            return ("playbook", problem);
        return null;
    }

    /// <summary>
    /// Whether <paramref name="playbook"/> is in the project at the commit a run started now would pin: the ref is
    /// fetched, as the run's first attempt does (which checks again, at the commit it pins). When git or the cache
    /// cannot answer now, the submit goes on and the run's own fetch decides, as before this check existed.
    /// </summary>
    private async Task<string?> PlaybookProblemAsync(ProjectInfo project, string playbook, CancellationToken ct)
    {
        string commit;
        CheckoutLease lease;
        try
        {
            commit = await cache.SyncAsync(project, ct);
            await projects.RecordSyncAsync(project.Id, commit, projects.Now(), ct);
            // No job pins this commit yet: the lease keeps pruning off the checkout while it is looked at.
            lease = await cache.LeaseAsync(project, commit, ct);
        }
        catch (Exception e) when (e is GitException || ProjectProblems.Handles(e))
        {
            return null;
        }
        using (lease)
        {
            return ProjectPaths.Resolve(ProjectPaths.RealPath(lease.Path), playbook, directoryAllowed: false, out _) switch
            {
                PathProblem.None => null,
                PathProblem.Outside => $"playbook '{playbook}' is outside project '{project.Name}'",
                _ => $"playbook '{playbook}' does not exist in project '{project.Name}' at commit {commit} (its ref {project.Ref ?? "HEAD"})",
            };
        }
    }

    /// <summary>
    /// The submitter may use the machine credential the run names, and the credential its project fetches with (the
    /// run fetches, as a sync does): each by its use rules.
    /// </summary>
    public override async Task<string?> CheckUseAsync(JsonObject inputs, Principal principal, CancellationToken ct)
    {
        if (inputs["credential"]?.GetValue<string>() is { } name && Validate.IsDnsLabel(name)
            && await credentials.FindAsync(name, ct) is { } machine && machine.Use.Refusal(name, principal) is { } refused)
            return refused;
        if (inputs["project"]?.GetValue<string>() is { } projectRef && Validate.IsDnsLabel(projectRef) && await projects.FindAsync(projectRef, ct) is { } project)
            return await credentials.FetchRefusalAsync(project.Name, project.Credential, principal, ct);
        return null;
    }

    /// <summary>
    /// The playbook inside the project's checkout of the commit this step runs. The first attempt resolves the
    /// project's ref (fetching the mirror) and pins the commit in the database, with a <c>project.pinned</c>
    /// event, before ansible starts; every later attempt of the step (a retry of the job, a resume after a crash)
    /// runs the pinned commit, whatever the branch has moved to since.
    /// </summary>
    private async Task<(string Playbook, ProjectInfo Project, string Commit, string Checkout)> PlaybookFromProjectAsync(StepContext context, string projectRef, string relative, string? projectCommit, CancellationToken ct)
    {
        var project = await projects.FindAsync(projectRef, ct) ?? throw new StepFailedException($"project '{projectRef}' does not exist (any more)");
        string commit;
        try
        {
            if (await projects.PinOfAsync(context.JobId, context.StepOrder, ct) is { } pin && pin.ProjectId == project.Id)
            {
                commit = pin.Commit;
            }
            else
            {
                if (projectCommit is { } given)
                {
                    // Only a shard runs a commit it is given, the one its parent pinned, and a retry on failed hosts, the
                    // one its original pinned: anyone else would run any commit under the project's name, past its ref.
                    var job = (await store.GetAsync(context.JobId, ct))?.Job;
                    var pinnedBy = job?.ParentId ?? job?.RetryOf;
                    if (pinnedBy is null || given.Length != 40 || !GitUrls.LooksLikeCommit(given) || !await projects.PinnedAsync(pinnedBy, project.Id, given, ct))
                        throw new StepFailedException("project_commit is only for the shards of a sharded run and retries on failed hosts (the commit the job they come from pinned)");
                    commit = given;
                }
                else
                {
                    commit = await cache.SyncAsync(project, ct);
                    await projects.RecordSyncAsync(project.Id, commit, projects.Now(), ct);
                }
                var announce = new NewEvent("project.pinned", context.StepOrder, new JsonObject
                {
                    ["step"] = context.StepName, ["project"] = project.Name, ["git_repo"] = project.GitRepo, ["ref"] = project.Ref, ["commit"] = commit,
                });
                if (!await projects.PinAsync(context.JobId, context.Owner, context.StepOrder, project.Id, commit, announce, ct))
                    throw new InvalidOperationException("the job's lease was lost before the playbook run; another worker owns the job now");
            }
            var checkout = await cache.CheckoutAsync(project, commit, ct);
            return (ResolvePlaybook(relative, checkout, $"project '{project.Name}'"), project, commit, checkout);
        }
        catch (GitException e) when (e.Refused)
        {
            throw new StepFailedException($"project '{project.Name}': {e.Message}");
        }
        catch (GitException e)
        {
            // The remote may be back on the next attempt.
            throw new InvalidOperationException($"project '{project.Name}': {e.Message}", e);
        }
    }

    /// <summary>The SSH key (and user) the run reaches its machines with; loaded into the run's own ssh-agent, never written to disk (see SshAgent).</summary>
    private async Task<AnsibleMachineCredential?> MachineCredentialAsync(string? name, CancellationToken ct)
    {
        if (name is null)
            return null;
        var credential = await credentials.GetSecretAsync(name, ct) ?? throw new StepFailedException($"credential '{name}' does not exist (any more)");
        if (credential.Info.Kind != CredentialKinds.SshKey)
            throw new StepFailedException($"credential '{name}' is a {credential.Info.Kind}; the machines of a playbook run take an ssh_key");
        return new AnsibleMachineCredential(GitRunner.SshKeyText(credential.Secret), credential.Info.Username);
    }
}
