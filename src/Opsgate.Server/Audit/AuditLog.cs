using System.Text;
using Dapper;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Audit;

internal sealed record AuditQuery(string? Actor, string? Action, string? Namespace, DateTime? Since, DateTime? Until, long? Before, int Limit, string? Cluster = null)
{
    /// <summary>A reader with a namespace allowlist: only entries about its namespaces (and jobs it may see) and its own actions.</summary>
    public AuditReader? Reader { get; init; }
}

/// <param name="Namespaces">Null: the reader sees every entry.</param>
internal sealed record AuditReader(string PrincipalId, IReadOnlyList<string>? Namespaces);

internal sealed record AuditVerification(bool Ok, long Entries, long? FirstBadId, string? Reason);

/// <summary>
/// Reads the audit log: filtered keyset pages, newest first, and chain verification. Each read first waits for staged
/// entries to be chained (<see cref="AuditWriter.FlushAsync"/>).
/// </summary>
internal sealed class AuditLog(Database database, AuditWriter writer, ISqlText dialect)
{
    private const string Columns =
        "id, ts, actor, source_ip, action, resource_kind, namespace, resource_name, request_body, status, http_status, " +
        "error_message, principal_id, auth_method, request_id, dry_run, job_id, cluster, prev_hash, hash";

    public async Task<IReadOnlyList<AuditEntry>> QueryAsync(AuditQuery query, CancellationToken ct)
    {
        // Only fixed clauses are joined here; every value travels as a parameter.
        var sql = new StringBuilder($"SELECT {Columns} FROM audit_log WHERE 1=1");
        var parameters = new DynamicParameters();
        if (query.Actor is not null)
        {
            sql.Append(" AND actor = @actor");
            parameters.Add("actor", query.Actor);
        }
        if (query.Action is not null)
        {
            sql.Append(" AND action = @action");
            parameters.Add("action", query.Action);
        }
        if (query.Namespace is not null)
        {
            sql.Append(" AND namespace = @namespace");
            parameters.Add("namespace", query.Namespace);
        }
        if (query.Cluster is not null)
        {
            sql.Append(" AND cluster = @cluster");
            parameters.Add("cluster", query.Cluster);
        }
        if (query.Since is { } since)
        {
            sql.Append(" AND ts >= @since");
            parameters.Add("since", since);
        }
        if (query.Until is { } until)
        {
            sql.Append(" AND ts < @until");
            parameters.Add("until", until);
        }
        if (query.Reader is { Namespaces: { } namespaces } reader)
        {
            sql.Append(" AND (principal_id = @readerId OR ").Append(ScopeSql.InNamespaces(dialect, "namespace"))
                .Append(" OR (job_id IS NOT NULL AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = audit_log.job_id AND ")
                .Append(ScopeSql.JobWithinNamespaces(dialect)).Append(")))");
            parameters.Add("readerId", reader.PrincipalId);
            parameters.Add("namespaces", namespaces.ToArray());
            parameters.Add("scopedYes", true);
        }
        if (query.Before is { } before)
        {
            sql.Append(" AND id < @before");
            parameters.Add("before", before);
        }
        sql.Append(" ORDER BY id DESC LIMIT @limit");
        parameters.Add("limit", query.Limit);

        await writer.FlushAsync(ct);
        await using var connection = await database.OpenAsync(ct);
        var rows = (await connection.QueryAsync<AuditEntry>(new CommandDefinition(sql.ToString(), parameters, cancellationToken: ct))).AsList();
        foreach (var row in rows)
            row.Ts = row.Ts.AsUtc();
        return rows;
    }

    /// <summary>The newest entry per cluster whose action starts with <paramref name="actionPrefix"/> (a cluster's latest execution).</summary>
    /// <param name="namespaces">A reader's namespace allowlist: only entries in those namespaces (null: any).</param>
    public async Task<IReadOnlyDictionary<string, AuditEntry>> LatestPerClusterAsync(string actionPrefix, IReadOnlyList<string>? namespaces, CancellationToken ct)
    {
        await writer.FlushAsync(ct);
        await using var connection = await database.OpenAsync(ct);
        var within = namespaces is null ? "" : " AND " + ScopeSql.InNamespaces(dialect, "namespace");
        var rows = await connection.QueryAsync<AuditEntry>(new CommandDefinition(
            $"""
            SELECT {Columns} FROM audit_log WHERE id IN (
                SELECT MAX(id) FROM audit_log WHERE cluster IS NOT NULL AND action LIKE @prefix{within} GROUP BY cluster)
            """, new { prefix = actionPrefix + "%", namespaces = namespaces?.ToArray() }, cancellationToken: ct));
        return rows.ToDictionary(r => r.Cluster!, r => { r.Ts = r.Ts.AsUtc(); return r; });
    }

    /// <summary>Walks the whole chain in order; the first row whose links or hash do not match is reported.</summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken ct)
    {
        await writer.FlushAsync(ct);
        await using var connection = await database.OpenAsync(ct);
        var expectedPrev = AuditChain.Genesis;
        long count = 0;
        long? lastId = null;
        await foreach (var row in connection.QueryUnbufferedAsync<AuditEntry>($"SELECT {Columns} FROM audit_log ORDER BY id").WithCancellation(ct))
        {
            count++;
            row.Ts = row.Ts.AsUtc();
            if (lastId is { } previousId && row.Id != previousId + 1)
                return new AuditVerification(false, count, row.Id, $"entry {previousId + 1} is missing");
            if (row.PrevHash != expectedPrev)
                return new AuditVerification(false, count, row.Id, "prev_hash does not match the previous entry's hash");
            if (AuditChain.ComputeHash(row) != row.Hash)
                return new AuditVerification(false, count, row.Id, "the entry's contents do not match its hash");
            expectedPrev = row.Hash;
            lastId = row.Id;
        }
        return new AuditVerification(true, count, null, null);
    }
}
