using System.Text;
using Dapper;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Ui;

/// <summary>What the jobs list is filtered by; every field optional. Dates are whole UTC days, <c>To</c> included.</summary>
internal sealed record JobFilter(string? Status, string? Type, string? Actor, string? Cluster, string? Namespace, DateOnly? From, DateOnly? To);

/// <summary>
/// The console's jobs list: newest first, filtered, in pages that continue after the last id shown (keyset paging).
/// Job ids are ULIDs, so a date range is a range of ids and every filter walks the primary key or one of the
/// (column, id) indexes of migration 0030 from where the page starts: the cost of a page does not grow with the
/// number of jobs before it. A principal's namespace allowlist is applied in SQL as for the API's listing.
/// </summary>
internal sealed class JobListQuery(Database database, ISqlText dialect)
{
    public async Task<IReadOnlyList<JobRow>> PageAsync(JobFilter filter, string? before, int limit, IReadOnlyList<string>? namespaces, CancellationToken ct)
    {
        var sql = new StringBuilder(
            "SELECT id, type, status, actor, created_at AS CreatedAt, started_at AS StartedAt, finished_at AS FinishedAt, dry_run AS DryRun, " +
            "error, parent_id AS ParentId FROM jobs WHERE 1=1");
        if (namespaces is not null)
            sql.Append(" AND ").Append(ScopeSql.JobWithinNamespaces(dialect));
        if (filter.Status is not null)
            sql.Append(" AND status = @status");
        if (filter.Type is not null)
            sql.Append(" AND type = @type");
        if (filter.Actor is not null)
            sql.Append(" AND actor = @actor");
        if (filter.Cluster is not null || filter.Namespace is not null)
        {
            sql.Append(" AND EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = jobs.id");
            if (filter.Cluster is not null)
                sql.Append(" AND t.cluster = @cluster");
            if (filter.Namespace is not null)
                sql.Append(" AND t.namespace = @namespace");
            sql.Append(')');
        }
        if (filter.From is { } from)
            sql.Append(" AND id >= @fromId");
        if (filter.To is { } to)
            sql.Append(" AND id < @toId");
        if (before is not null)
            sql.Append(" AND id < @before");
        sql.Append(" ORDER BY id DESC LIMIT @limit");
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<JobRow>(sql.ToString(), new
        {
            status = filter.Status,
            type = filter.Type,
            actor = filter.Actor,
            cluster = filter.Cluster,
            @namespace = filter.Namespace,
            fromId = filter.From is { } f ? FirstId(f) : null,
            toId = filter.To is { } t ? FirstId(t.AddDays(1)) : null,
            before,
            limit,
            namespaces = namespaces?.ToArray(),
            scopedYes = true,
        });
        return rows.Select(JobStore.Normalize).ToList();
    }

    /// <summary>The smallest job id made at or after midnight (UTC) of <paramref name="day"/>: its time part, then zeros.</summary>
    public static string FirstId(DateOnly day) => FirstId(new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero));

    public static string FirstId(DateTimeOffset at)
    {
        const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
        var ms = (ulong)Math.Max(0, at.ToUnixTimeMilliseconds());
        Span<char> chars = stackalloc char[26];
        chars.Fill('0');
        // A ULID's first 10 characters are its 48-bit millisecond time, 5 bits each, most significant first.
        for (var i = 9; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(ms & 31)];
            ms >>= 5;
        }
        return new string(chars);
    }
}
