using System.Text;
using Dapper;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Ui;

/// <summary>
/// Jobs waiting for approval, oldest first, that a principal did not submit and may see (its namespace allowlist
/// applied in SQL as for the API's listing). Whether its role may decide each one depends on the runbook, which the
/// page checks (<see cref="Pages.ApprovalsModel"/>). Reads the (status, id) index of migration 0030.
/// </summary>
internal sealed class ApprovalQueueQuery(Database database, ISqlText dialect)
{
    public async Task<IReadOnlyList<JobRow>> PageAsync(string principalId, IReadOnlyList<string>? namespaces, string? after, int limit, CancellationToken ct)
    {
        var sql = new StringBuilder(
            "SELECT id, type, status, params, actor, principal_id AS PrincipalId, created_at AS CreatedAt, dry_run AS DryRun, " +
            "approval_expires_at AS ApprovalExpiresAt FROM jobs WHERE status = @status AND (principal_id IS NULL OR principal_id <> @me)");
        if (namespaces is not null)
            sql.Append(" AND ").Append(ScopeSql.JobWithinNamespaces(dialect));
        if (after is not null)
            sql.Append(" AND id > @after");
        sql.Append(" ORDER BY id LIMIT @limit");
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<JobRow>(sql.ToString(), new
        {
            status = JobStatus.WaitingApproval,
            me = principalId,
            after,
            limit,
            namespaces = namespaces?.ToArray(),
            scopedYes = true,
        });
        return rows.Select(JobStore.Normalize).ToList();
    }
}
