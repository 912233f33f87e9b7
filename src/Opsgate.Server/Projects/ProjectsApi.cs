using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Credentials;
using Opsgate.Server.Engine;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Projects;

internal sealed record CreateProjectRequest(string Name, string GitRepo, string? Ref = null, string? Credential = null);

internal sealed record ProjectResponse(
    string Id, string Name, string GitRepo, string? Ref, string? Credential, DateTime CreatedAt, string CreatedBy, string? Commit, DateTime? SyncedAt)
{
    public static ProjectResponse From(ProjectInfo p) => new(p.Id, p.Name, p.GitRepo, p.Ref, p.Credential, p.CreatedAt, p.CreatedBy, p.LastCommit, p.SyncedAt);
}

internal sealed record ProjectList(IReadOnlyList<ProjectResponse> Items);

internal sealed record SyncResponse(string Id, string Name, string? Ref, string Commit, DateTime SyncedAt);

/// <summary>/api/v1/projects: playbook projects from git, checked with <c>git ls-remote</c> on create and fetched on demand.</summary>
internal static class ProjectsApi
{
    public static void MapProjectsApi(this WebApplication app)
    {
        var group = app.MapGroup("/api/v1/projects").WithTags("Projects");
        group.MapPost("/", Create).RequireRole(Role.Operator, AccessScope.Global).Audited("project.create", "project")
            .WithSummary("Add a project: name, git_repo, optional ref (branch, tag or commit; default the remote's HEAD) and credential. A file:// URL or local path is accepted only under Ansible:LocalRepositoryRoots.");
        group.MapGet("/", List).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Projects with the commit of their last fetch.");
        group.MapGet("/{idOrName}", Get).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("One project, by id or name.");
        group.MapPost("/{idOrName}/sync", Sync).RequireRole(Role.Operator, AccessScope.Global).Audited("project.sync", "project")
            .WithSummary("Fetch the project now; returns the commit its ref resolves to. Refused (403) to a caller the project's credential's use rules leave out.");
        group.MapDelete("/{idOrName}", Delete).RequireRole(Role.Operator, AccessScope.Global).Audited("project.delete", "project")
            .WithSummary("Delete a project and its cached mirror; refused while a pending, waiting or running job names it in its project parameter. Jobs that ran it keep the commit they recorded.");
    }

    private static async Task<Results<Created<ProjectResponse>, ProblemHttpResult>> Create(
        CreateProjectRequest request, HttpContext context, ProjectStore projects, ProjectCache cache, CredentialStore credentials, LocalRepositories local, TimeProvider time)
    {
        context.SetAuditBody(request with { GitRepo = GitUrls.ForAudit(request.GitRepo) });
        context.Audit().ResourceName = request.Name.Length <= 63 ? request.Name : request.Name[..63];
        if (!Validate.IsDnsLabel(request.Name))
            return Problems.Invalid("name", Validate.DnsLabelRule);
        if (JobIds.IsValid(request.Name))
            return Problems.Invalid("name", "must not look like a project id (26 letters and digits): projects are found by id or name");
        if (GitUrls.Check(request.GitRepo, out var transport) is { } badUrl)
            return Problems.Invalid("git_repo", badUrl);
        if (local.Refusal(request.GitRepo) is { } notAllowed)
            return Problems.Invalid("git_repo", notAllowed);
        if (request.Ref is { } gitRef && GitUrls.CheckRef(gitRef) is { } badRef)
            return Problems.Invalid("ref", badRef);
        CredentialSecret? credential = null;
        if (request.Credential is { } credentialName)
        {
            if (!Validate.IsDnsLabel(credentialName))
                return Problems.Invalid("credential", Validate.DnsLabelRule);
            // git sends the secret to the repository's host, which the request names: only admins, who make
            // credentials, may point one at a host.
            if (context.Principal()!.Role is not { } role || role < Role.Admin)
                return TypedResults.Problem(statusCode: 403, title: "Forbidden",
                    detail: "attaching a credential to a project requires role admin: git sends the credential to the repository's host");
            try
            {
                credential = await credentials.GetSecretAsync(credentialName, context.RequestAborted);
            }
            catch (CredentialSecretMissingException e)
            {
                return ProjectProblems.For(e, context);
            }
            if (credential is null)
                return Problems.Invalid("credential", $"credential '{credentialName}' does not exist");
            if (credential.Info.Use.Refusal(credentialName, context.Principal()!) is { } refusal)
                return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: refusal);
            var fits = transport switch
            {
                GitTransport.Ssh => credential.Info.Kind == CredentialKinds.SshKey,
                GitTransport.Https => credential.Info.Kind is CredentialKinds.Token or CredentialKinds.Password,
                _ => false,
            };
            if (!fits)
                return Problems.Invalid("credential", $"a {credential.Info.Kind} credential does not fit a {transport.ToString().ToLowerInvariant()} repository (ssh takes ssh_key; https takes token or password; local paths take none)");
        }

        var project = new ProjectInfo(JobIds.New(time.GetUtcNow()), request.Name, request.GitRepo, request.Ref, request.Credential,
            projects.Now(), context.Principal()!.Name, null, null);
        try
        {
            await cache.CheckRemoteAsync(project.GitRepo, project.Ref, credential, context.RequestAborted);
            // A commit id is only found by fetching; the fetch also warms the mirror for the first run.
            if (project.Ref is { } r && GitUrls.LooksLikeCommit(r))
            {
                var commit = await cache.SyncAsync(project, context.RequestAborted);
                project = project with { LastCommit = commit, SyncedAt = projects.Now() };
            }
        }
        catch (GitException e)
        {
            await cache.ForgetAsync(project.Id, CancellationToken.None);
            return Problems.Invalid(e.AboutRef ? "ref" : "git_repo", e.Message);
        }
        catch (Exception e) when (ProjectProblems.Handles(e))
        {
            await ForgetQuietlyAsync(cache, project.Id);
            return ProjectProblems.For(e, context);
        }
        try
        {
            await projects.InsertAsync(project, context.RequestAborted);
        }
        catch (ProjectConflictException e)
        {
            await cache.ForgetAsync(project.Id, CancellationToken.None);
            return Problems.Conflict(e.Message);
        }
        return TypedResults.Created($"/api/v1/projects/{project.Id}", ProjectResponse.From(project));
    }

    private static async Task<Ok<ProjectList>> List(ProjectStore projects, CancellationToken ct) =>
        TypedResults.Ok(new ProjectList((await projects.ListAsync(ct)).Select(ProjectResponse.From).ToList()));

    private static async Task<Results<Ok<ProjectResponse>, ProblemHttpResult>> Get(string idOrName, ProjectStore projects, CancellationToken ct)
    {
        if (!Validate.IsDnsLabel(idOrName))
            return Problems.Invalid("idOrName", "must be a project id or name");
        return await projects.FindAsync(idOrName, ct) is { } project ? TypedResults.Ok(ProjectResponse.From(project)) : Problems.NotFound($"project '{idOrName}' does not exist");
    }

    /// <summary>Also what the console's Sync button calls, so both check and answer alike.</summary>
    internal static async Task<Results<Ok<SyncResponse>, ProblemHttpResult>> Sync(
        string idOrName, HttpContext context, ProjectStore projects, ProjectCache cache, CredentialStore credentials, LocalRepositories local)
    {
        context.Audit().ResourceName = idOrName.Length <= 63 ? idOrName : idOrName[..63];
        if (!Validate.IsDnsLabel(idOrName))
            return Problems.Invalid("idOrName", "must be a project id or name");
        if (await projects.FindAsync(idOrName, context.RequestAborted) is not { } project)
            return Problems.NotFound($"project '{idOrName}' does not exist");
        context.Audit().ResourceName = project.Name;
        // Made before Ansible:LocalRepositoryRoots left its directory out: the project's state, not this request's.
        if (local.Refusal(project.GitRepo) is { } notAllowed)
            return Problems.Conflict($"project '{project.Name}': {notAllowed}");
        // A sync sends the project's credential to its host: the caller must be one who may use it.
        if (await credentials.FetchRefusalAsync(project.Name, project.Credential, context.Principal()!, context.RequestAborted) is { } refusal)
            return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: refusal);
        string commit;
        try
        {
            commit = await cache.SyncAsync(project, context.RequestAborted);
        }
        catch (GitException e)
        {
            // The repository or the ref went away since the project was made: the remote's state, not bad input.
            return TypedResults.Problem(statusCode: StatusCodes.Status502BadGateway, title: "git fetch failed", detail: e.Message);
        }
        catch (Exception e) when (ProjectProblems.Handles(e))
        {
            return ProjectProblems.For(e, context);
        }
        var at = projects.Now();
        await projects.RecordSyncAsync(project.Id, commit, at, context.RequestAborted);
        return TypedResults.Ok(new SyncResponse(project.Id, project.Name, project.Ref, commit, at));
    }

    /// <summary>Clean-up after a failure that may itself be the cache's (an unwritable data dir): the answer is about the first failure.</summary>
    private static async Task ForgetQuietlyAsync(ProjectCache cache, string projectId)
    {
        try
        {
            await cache.ForgetAsync(projectId, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing was made, or it cannot be removed now; either way the project does not exist.
        }
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(string idOrName, HttpContext context, ProjectStore projects, ProjectCache cache)
    {
        context.Audit().ResourceName = idOrName.Length <= 63 ? idOrName : idOrName[..63];
        if (!Validate.IsDnsLabel(idOrName))
            return Problems.Invalid("idOrName", "must be a project id or name");
        if (await projects.FindAsync(idOrName, context.RequestAborted) is not { } project)
            return Problems.NotFound($"project '{idOrName}' does not exist");
        context.Audit().ResourceName = project.Name;
        try
        {
            if (!await projects.DeleteAsync(project.Id, project.Name, context.RequestAborted))
                return Problems.NotFound($"project '{idOrName}' does not exist");
        }
        catch (ProjectConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
        await cache.ForgetAsync(project.Id, context.RequestAborted);
        return TypedResults.NoContent();
    }
}
