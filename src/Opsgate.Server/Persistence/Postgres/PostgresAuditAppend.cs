using Dapper;

namespace Opsgate.Server.Persistence.Postgres;

/// <summary>
/// PostgreSQL: the chain's lock is an advisory transaction lock, so writers of every replica take turns at the chain's
/// end. Transitions of many jobs commit side by side, so their entries are staged in <c>audit_staged</c> within their
/// transactions (as durable as the change they record) and moved into the log by the next batch, under the lock.
/// </summary>
internal sealed class PostgresAuditAppend(Database database) : IAuditAppend
{
    private const long LockKey = 0x6f70_7367_6175_64; // "opsgaud"

    private const string EntryColumns =
        "ts, actor, source_ip, action, resource_kind, namespace, resource_name, request_body, status, http_status, error_message, " +
        "principal_id, auth_method, request_id, dry_run, job_id, cluster";

    /// <summary>A whole batch in one statement (one row per array element) instead of one statement per entry, while the lock is held.</summary>
    private const string InsertSql =
        """
        INSERT INTO audit_log (id, ts, actor, source_ip, action, resource_kind, namespace, resource_name, request_body,
            status, http_status, error_message, principal_id, auth_method, request_id, dry_run, job_id, cluster, prev_hash, hash)
        SELECT * FROM unnest(@Id::bigint[], @Ts::timestamptz[], @Actor::text[], @SourceIp::text[], @Action::text[], @ResourceKind::text[],
            @Namespace::text[], @ResourceName::text[], @RequestBody::text[], @Status::text[], @HttpStatus::integer[], @ErrorMessage::text[],
            @PrincipalId::text[], @AuthMethod::text[], @RequestId::text[], @DryRun::boolean[], @JobId::text[], @Cluster::text[],
            @PrevHash::text[], @Hash::text[])
        """;

    private const string StageSql =
        $"""
        INSERT INTO audit_staged ({EntryColumns})
        VALUES (@Ts, @Actor, @SourceIp, @Action, @ResourceKind, @Namespace, @ResourceName, @RequestBody, @Status, @HttpStatus, @ErrorMessage,
            @PrincipalId, @AuthMethod, @RequestId, @DryRun, @JobId, @Cluster)
        """;

    private const string TakeStagedSql =
        $"""
        WITH taken AS (DELETE FROM audit_staged WHERE seq IN (SELECT seq FROM audit_staged ORDER BY seq LIMIT @n) RETURNING *)
        SELECT {EntryColumns} FROM taken ORDER BY seq
        """;

    public bool Stages => true;

    public Task StageLaterAsync(WriteScope write, IAuditRow entry) => write.LaterAsync(StageSql, entry);

    public async Task<bool> AnyStagedAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM audit_staged)");
    }

    public async Task<AuditHead<T>> HeadAsync<T>(WriteScope write, int maxStaged)
    {
        // The lock, the staged entries and the newest hash in one round trip (the statements run in order, so the other two
        // only once the lock is had).
        await using var read = await write.Connection.QueryMultipleAsync(
            $"SELECT pg_advisory_xact_lock(@key); {TakeStagedSql}; {AuditLast.Sql}",
            new { key = LockKey, n = maxStaged }, write.Transaction);
        await read.ReadAsync<object>();
        var staged = (await read.ReadAsync<T>()).AsList();
        var last = await read.ReadSingleOrDefaultAsync<AuditLast>();
        return new(staged, last?.Id, last?.Hash);
    }

    /// <summary>Held for the commit (<see cref="WriteScope.LaterAsync"/>): one round trip with it.</summary>
    public Task InsertAsync(WriteScope write, IReadOnlyList<IAuditRow> batch) => write.LaterAsync(InsertSql, new
    {
        Id = batch.Select(e => e.Id).ToArray(), Ts = batch.Select(e => e.Ts).ToArray(), Actor = batch.Select(e => e.Actor).ToArray(),
        SourceIp = batch.Select(e => e.SourceIp).ToArray(), Action = batch.Select(e => e.Action).ToArray(),
        ResourceKind = batch.Select(e => e.ResourceKind).ToArray(), Namespace = batch.Select(e => e.Namespace).ToArray(),
        ResourceName = batch.Select(e => e.ResourceName).ToArray(), RequestBody = batch.Select(e => e.RequestBody).ToArray(),
        Status = batch.Select(e => e.Status).ToArray(), HttpStatus = batch.Select(e => e.HttpStatus).ToArray(),
        ErrorMessage = batch.Select(e => e.ErrorMessage).ToArray(), PrincipalId = batch.Select(e => e.PrincipalId).ToArray(),
        AuthMethod = batch.Select(e => e.AuthMethod).ToArray(), RequestId = batch.Select(e => e.RequestId).ToArray(),
        DryRun = batch.Select(e => e.DryRun).ToArray(), JobId = batch.Select(e => e.JobId).ToArray(), Cluster = batch.Select(e => e.Cluster).ToArray(),
        PrevHash = batch.Select(e => e.PrevHash).ToArray(), Hash = batch.Select(e => e.Hash).ToArray(),
    });
}

/// <summary>The newest audit log entry's id and hash.</summary>
internal sealed class AuditLast
{
    public const string Sql = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1";

    public long Id { get; set; }
    public string Hash { get; set; } = "";
}
