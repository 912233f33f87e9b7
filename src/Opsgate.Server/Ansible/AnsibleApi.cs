using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Jobs;

namespace Opsgate.Server.Ansible;

/// <summary>One host's PLAY RECAP figures, summed over the job's ansible.run steps.</summary>
internal sealed record HostStatsView(
    string Target, string JobId, DateTime? JobStartTime, int Ok, int Changed, int Failed, int Skipped, int Unreachable, int Rescued, int Ignored, bool Complete);

/// <summary>pansible's "Get job results" entry: the host's failures (null when none) and its stats.</summary>
internal sealed record HostResultView(IReadOnlyList<JsonNode?>? Failures, HostStatsView Stats);

internal static class AnsibleApi
{
    public static void MapAnsibleApi(this WebApplication app)
    {
        app.MapGet("/api/v1/jobs/{id}/hosts", Hosts).RequireRole(Role.Viewer, AccessScope.Job).WithTags("Jobs")
            .WithSummary("Per-host results of the job's Ansible runs, keyed by host: the PLAY RECAP figures and the failures with their messages.");
        app.MapInventoriesApi();
    }

    private static async Task<Results<Ok<SortedDictionary<string, HostResultView>>, ProblemHttpResult>> Hosts(
        string id, HttpContext http, JobAccess access, AnsibleResults results, CancellationToken ct)
    {
        var (found, refused) = await access.CheckAsync(http, id, JobAction.Read);
        if (found is null)
            return refused!;
        var rows = await results.ListAsync(id, ct);
        var incomplete = rows.Where(r => !r.Complete).Select(r => r.Host).ToHashSet(StringComparer.Ordinal);
        var view = new SortedDictionary<string, HostResultView>(StringComparer.Ordinal);
        foreach (var (name, host) in AnsibleResults.Sum(rows))
        {
            view[name] = new HostResultView(
                host.Failures.Count == 0 ? null : [.. host.Failures],
                new HostStatsView(name, id, found.Job.StartedAt, host.Ok, host.Changed, host.Failed, host.Skipped, host.Unreachable, host.Rescued, host.Ignored,
                    !incomplete.Contains(name)));
        }
        return TypedResults.Ok(view);
    }
}
