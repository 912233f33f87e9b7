using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Credentials;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// Playbook projects as GET /api/v1/projects lists them: the ref, the commit of the last successful fetch and when.
/// Operators get a Sync button per project, which calls the API's own sync handler (its checks: local repository
/// roots, the credential's use rules) and is audited as <c>project.sync</c>.
/// </summary>
internal sealed class ProjectsModel(ProjectStore projects, ProjectCache cache, CredentialStore credentials, LocalRepositories local) : PageModel
{
    [BindProperty(SupportsGet = true)] public string? Synced { get; set; }

    public IReadOnlyList<ProjectInfo> Rows { get; private set; } = [];
    public bool OfferSync { get; private set; }
    public string? Notice { get; private set; }
    public string? Done { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        await LoadAsync(ct);
        if (Synced is not null && Rows.FirstOrDefault(p => p.Name == Synced) is { } project)
            Done = $"Project {project.Name} fetched: {project.Ref ?? "HEAD"} is at {project.LastCommit}.";
    }

    public async Task<IActionResult> OnPostSyncAsync([FromForm] string? name)
    {
        var http = HttpContext;
        var me = http.Principal()!;
        name = name?.Trim() ?? "";
        int status;
        string refusal;
        if (me.Role is not { } role || role < Role.Operator)
        {
            http.Audit().ResourceName = name.Length <= 63 ? name : name[..63];
            (status, refusal) = (StatusCodes.Status403Forbidden, $"this requires role {Role.Operator.Name()} or higher; {me.Name} has role {me.Role?.Name() ?? "none"}");
        }
        else
        {
            var answer = await ProjectsApi.Sync(name, http, projects, cache, credentials, local);
            if (answer.Result is Ok<SyncResponse> { Value: { } synced })
            {
                await UiSession.AuditAsync(http, "project.sync", "project", AuditStatus.Success, StatusCodes.Status303SeeOther, null);
                Response.Headers.Location = "/projects?synced=" + Uri.EscapeDataString(synced.Name);
                return StatusCode(StatusCodes.Status303SeeOther);
            }
            var problem = (ProblemHttpResult)answer.Result;
            (status, refusal) = (problem.StatusCode, problem.ProblemDetails.Detail ?? problem.ProblemDetails.Title ?? "refused");
        }
        await UiSession.AuditAsync(http, "project.sync", "project", status is 401 or 403 ? AuditStatus.Denied : AuditStatus.Error, status, refusal);
        await LoadAsync(http.RequestAborted);
        Notice = $"Sync of {(name.Length <= 63 ? name : name[..63] + "...")}: {refusal}";
        Response.StatusCode = status;
        return Page();
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        Rows = await projects.ListAsync(ct);
        OfferSync = HttpContext.Principal()?.Role is { } role && role >= Role.Operator;
    }
}
