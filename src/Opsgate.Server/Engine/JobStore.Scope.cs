using Dapper;

namespace Opsgate.Server.Engine;

/// <summary>Where jobs act (see <see cref="JobScope"/>): the targets stored with a job, and the filter that keeps a principal to its namespaces.</summary>
internal sealed partial class JobStore
{
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
