using Dapper;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>Where jobs act (see <see cref="JobScope"/>): the targets stored with a job, and the filter that keeps a principal to its namespaces.</summary>
internal sealed partial class JobStore
{
    /// <summary>
    /// SQL condition on <c>jobs</c>: the job's targets are recorded and all lie in <c>@namespaces</c> (a string array:
    /// Dapper expands it into a list on SQLite and passes it as an array to PostgreSQL). A job from before targets were
    /// recorded matches no allowlist.
    /// </summary>
    public static string WithinNamespaces(DbDialect dialect) =>
        "jobs.scoped = @scopedYes AND NOT EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = jobs.id AND " +
        (dialect == DbDialect.Postgres ? "t.namespace <> ALL(@namespaces)" : "t.namespace NOT IN @namespaces") + ")";

    /// <summary>SQL condition: <paramref name="column"/> is one of <c>@namespaces</c> (see <see cref="WithinNamespaces"/>).</summary>
    public static string InNamespaces(DbDialect dialect, string column) =>
        dialect == DbDialect.Postgres ? $"{column} = ANY(@namespaces)" : $"{column} IN @namespaces";

    public async Task<IReadOnlyList<JobTarget>> TargetsAsync(string jobId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<(string Cluster, string Namespace)>(
            "SELECT cluster, namespace FROM job_targets WHERE job_id = @jobId ORDER BY cluster, namespace", new { jobId }))
            .Select(t => new JobTarget(t.Cluster, t.Namespace)).ToList();
    }

    /// <summary>Records a target a step learned at run time (after it was checked), so the job's visibility follows where it acted.</summary>
    public async Task AddTargetAsync(string jobId, JobTarget target, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        await write.Connection.ExecuteAsync(
            "INSERT INTO job_targets (job_id, cluster, namespace) VALUES (@jobId, @Cluster, @Namespace) ON CONFLICT DO NOTHING",
            new { jobId, target.Cluster, target.Namespace }, write.Transaction);
        await write.CommitAsync(ct);
    }
}
