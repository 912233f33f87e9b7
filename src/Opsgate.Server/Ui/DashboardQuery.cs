using System.Text;
using Dapper;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Ui;

/// <summary>The dashboard's counts: jobs made in the last 24 hours by status, within the principal's allowlist.</summary>
internal sealed class DashboardQuery(Database database, ISqlText dialect, TimeProvider time)
{
    public async Task<IReadOnlyDictionary<string, long>> CountsSinceAsync(TimeSpan window, IReadOnlyList<string>? namespaces, CancellationToken ct)
    {
        // Ids are time-ordered: the window is an id range read from the primary key, not a scan of every job.
        var sql = new StringBuilder("SELECT status, COUNT(*) AS n FROM jobs WHERE id >= @since");
        if (namespaces is not null)
            sql.Append(" AND ").Append(ScopeSql.JobWithinNamespaces(dialect));
        sql.Append(" GROUP BY status");
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<(string Status, long N)>(sql.ToString(), new
        {
            since = JobListQuery.FirstId(time.GetUtcNow() - window),
            namespaces = namespaces?.ToArray(),
            scopedYes = true,
        });
        return rows.ToDictionary(r => r.Status, r => r.N, StringComparer.Ordinal);
    }
}
