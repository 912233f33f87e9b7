using Dapper;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>A retry on failed hosts as the original job lists it.</summary>
internal sealed class RetryRow
{
    public string Id { get; set; } = "";
    public string Status { get; set; } = "";
    public DateTime CreatedAt { get; set; }
}

/// <summary>The other end of <see cref="JobRow.RetryOf"/>: the retries on failed hosts made from a job.</summary>
internal sealed partial class JobStore
{
    /// <summary>The jobs started as retries of <paramref name="jobId"/> on its failed hosts, oldest first.</summary>
    public async Task<IReadOnlyList<RetryRow>> RetriesAsync(string jobId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = (await connection.QueryAsync<RetryRow>(
            "SELECT id, status, created_at FROM jobs WHERE retry_of = @jobId ORDER BY created_at, id", new { jobId })).AsList();
        foreach (var row in rows)
            row.CreatedAt = row.CreatedAt.AsUtc();
        return rows;
    }
}
