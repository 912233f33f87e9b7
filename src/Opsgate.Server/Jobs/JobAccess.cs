using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Http;

namespace Opsgate.Server.Jobs;

/// <summary>What a caller wants to do with one job.</summary>
internal enum JobAction { Read, Cancel, Retry, Decide }

/// <summary>A job the caller may act on, as read for the check.</summary>
internal sealed record JobGrant(JobRow Job, IReadOnlyList<StepRow> Steps);

/// <summary>
/// The one place that decides whether the caller may see or act on a job (the route's role is checked before, by
/// its policy). A principal with a namespace allowlist sees and touches only jobs whose every target lies in it
/// (<see cref="JobScope"/>); approving and rejecting also need the runbook's approvers role and someone other than the
/// submitter. Listings use <see cref="ListScope"/>, which applies the same rule in SQL.
/// </summary>
internal sealed class JobAccess(JobStore store, RunbookCatalog catalog)
{
    /// <summary>The job, or the problem to answer: 400 for a malformed id, 404, or 403 naming the namespace or rule that refused.</summary>
    public async Task<(JobGrant? Grant, ProblemHttpResult? Refused)> CheckAsync(HttpContext http, string id, JobAction action)
    {
        if (!JobIds.IsValid(id))
            return (null, Problems.Invalid("id", "must be a job id (26 characters, as returned by submit)"));
        if (await store.GetAsync(id, http.RequestAborted) is not { } found)
            return (null, Problems.NotFound($"job {id} does not exist"));
        var principal = http.Principal()!;
        var refusal = await OutsideScopeAsync(found.Job, principal, http.RequestAborted)
            ?? (action == JobAction.Decide ? NotApprover(found.Job, principal) : null);
        if (refusal is null)
            return (new JobGrant(found.Job, found.Steps), null);
        if (action == JobAction.Read)
        {
            // Reads are not audited, refusals are: an attempt to look at another team's jobs is worth seeing.
            http.Audit().JobId = id;
            http.Audit().ResourceName = id;
            await http.WriteAuditAsync(AuditStatus.Denied, StatusCodes.Status403Forbidden, refusal);
        }
        return (null, TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: refusal));
    }

    /// <summary>The namespace allowlist a listing of jobs is limited to (null: none).</summary>
    public static IReadOnlyList<string>? ListScope(HttpContext http) => http.Principal()!.Namespaces;

    private async Task<string?> OutsideScopeAsync(JobRow job, Principal principal, CancellationToken ct)
    {
        if (principal.Namespaces is null)
            return null;
        if (!job.Scoped)
            return $"job {job.Id} was submitted before Opsgate recorded where jobs act; only principals without a namespace allowlist may see or act on it";
        foreach (var target in await store.TargetsAsync(job.Id, ct))
        {
            if (!principal.MayUseNamespace(target.Namespace))
                return $"job {job.Id} acts on namespace '{target.Namespace}' of cluster '{target.Cluster}', which is not in {principal.Name}'s namespace allowlist";
        }
        return null;
    }

    private string? NotApprover(JobRow job, Principal principal)
    {
        var needed = catalog.Find(job.Type)?.Options.ApproversRole ?? Role.Approver;
        if (principal.Role is not { } role || role < needed)
            return $"deciding on {job.Type} jobs requires role {needed.Name()} or higher";
        if (principal.Id == job.PrincipalId)
            return "a job cannot be approved or rejected by the one who submitted it";
        return null;
    }
}
