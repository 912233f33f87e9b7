using System.Data.Common;
using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Audit;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

internal sealed record NewJob(string Id, string Type, JsonObject Params, bool DryRun, string Status, string? Actor, string? PrincipalId,
    string? SourceIp, string? ConcurrencyKey, DateTime? ApprovalExpiresAt, IReadOnlyList<(string Name, string Kind)> Steps)
{
    /// <summary>A child job: the parent that waits for it, and which shard of which round of the parent's run it is.</summary>
    public string? ParentId { get; init; }
    public int? ShardIndex { get; init; }
    public int? ShardRound { get; init; }
    public int? ShardHosts { get; init; }

    /// <summary>A retry on failed hosts: the job whose failed and unreachable hosts this one runs over.</summary>
    public string? RetryOf { get; init; }

    /// <summary>Where the job acts, as far as is known at submit (see <see cref="JobScope"/>).</summary>
    public IReadOnlyList<JobTarget> Targets { get; init; } = [];

    /// <summary>The submitter's namespace allowlist (null: none), which targets learned at run time are checked against.</summary>
    public IReadOnlyList<string>? SubmitterNamespaces { get; init; }
}

/// <summary>A job a worker claimed, with its lease token and its steps as they were at the claim.</summary>
internal sealed record ClaimedJob(JobRow Job, string Lease, IReadOnlyList<StepRow> Steps);

/// <summary>A step's change with its events and audit entries, written on its own or later with another change of the job (<see cref="JobStore.FinishAsync"/>).</summary>
internal sealed record StepWrite(StepRow Step, IReadOnlyList<NewEvent> Events, IReadOnlyList<AuditEntry> Audited)
{
    /// <summary>This write and a later one of the same step as one: both their events and entries, the step as the later one leaves it.</summary>
    public StepWrite Then(StepWrite later) => new(later.Step, [.. Events, .. later.Events], [.. Audited, .. later.Audited]);
}

/// <param name="Final">The job's last event: its data gets <c>events</c>, the total count (its own seq), so a client knows it has them all.</param>
internal sealed record NewEvent(string Type, int? StepOrder, JsonObject? Data, bool Final = false) : IEventRow
{
    /// <summary>The data already serialized, for the hot path (callback events are rewritten without building a DOM); used when <see cref="Data"/> is null.</summary>
    public string? Json { get; init; }

    public string? DataJson => Data?.ToJsonString() ?? Json;
}

/// <summary>
/// Jobs, steps and events in the database, which is the only source of truth: a worker holds a job through a
/// lease (owner + expiry) and every write it makes is guarded by still owning that lease, so a worker that
/// stalled past its lease cannot overwrite the work of the one that took over.
/// </summary>
internal sealed partial class JobStore(Database database, TimeProvider time, JobSignals signals, AuditWriter audit, IJobClaims claims, IEventAppend eventRows,
    IJobWakeUps wakeUps, ISqlText dialect)
{
    private const string JobColumns =
        "id, type, status, params, dry_run, actor, principal_id, source_ip, created_at, started_at, finished_at, attempt, lease_owner, " +
        "lease_expires_at, concurrency_key, cancel_requested, cancel_requested_by, deadline_at, approval_expires_at, decided_by, decision_comment, error, last_seq, " +
        "parent_id, shard_index, shard_round, shard_hosts, relayed_seq, events_pruned_at, events_pruned_seq, scoped, submitter_namespaces, approver_namespaces, retry_of, trace_parent";
    private const string StepColumns = "job_id, step_order, name, kind, status, detail, attempts, started_at, finished_at, output";
    /// <summary>A job no running job holds the concurrency key of.</summary>
    private const string FreeKey =
        """
        (concurrency_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs holder WHERE holder.concurrency_key = jobs.concurrency_key AND holder.status = 'running' AND holder.id <> jobs.id))
        """;

    public DateTime Now() => time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();

    /// <summary>Queues a job; returns it and its steps as stored (the answer to the submit, without reading them back).</summary>
    public async Task<(JobRow Job, IReadOnlyList<StepRow> Steps)> SubmitAsync(NewJob job, CancellationToken ct)
    {
        DateTime created;
        await using (var write = await database.WriteAsync(ct))
        {
            created = await InsertAsync(write, job, ct);
            await write.CommitAsync(ct);
        }
        signals.JobQueued(children: job.ParentId is not null);
        signals.EventsAppended(job.Id);
        var stored = new JobRow
        {
            Id = job.Id, Type = job.Type, Status = job.Status, Params = job.Params.ToJsonString(), DryRun = job.DryRun, Actor = job.Actor,
            PrincipalId = job.PrincipalId, SourceIp = job.SourceIp, CreatedAt = created, ConcurrencyKey = job.ConcurrencyKey,
            ApprovalExpiresAt = job.ApprovalExpiresAt, ParentId = job.ParentId, ShardIndex = job.ShardIndex, ShardRound = job.ShardRound,
            ShardHosts = job.ShardHosts, LastSeq = 1, Scoped = true, SubmitterNamespaces = ScopeHolder.ToJson(job.SubmitterNamespaces), RetryOf = job.RetryOf,
        };
        return (stored, job.Steps.Select((s, i) => new StepRow { JobId = job.Id, StepOrder = i + 1, Name = s.Name, Kind = s.Kind, Status = StepStatus.Pending }).ToList());
    }

    /// <summary>
    /// Creates child jobs of <paramref name="parent"/> all at once, if <paramref name="owner"/> still holds the parent
    /// (False: lease lost, nothing written). All or none: a parent resuming after a crash finds either every child of
    /// its round or none.
    /// </summary>
    /// <param name="round">Recorded on the parent too, in the same transaction: the round a resumed parent waits for.</param>
    public async Task<bool> SubmitChildrenAsync(JobRow parent, string owner, int round, IReadOnlyList<NewJob> children, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        if (await write.Connection.ExecuteAsync("UPDATE jobs SET shard_round = @round WHERE id = @id AND lease_owner = @owner AND status = 'running'",
                new { round, id = parent.Id, owner }, write.Transaction) == 0)
            return false;
        foreach (var child in children)
            await InsertAsync(write, child, ct);
        await audit.AppendWithinAsync(write, [.. children.Select(c =>
        {
            var entry = JobAudit.Entry(parent, "job.submit", AuditStatus.Success, null);
            (entry.ResourceName, entry.JobId) = (c.Id, c.Id);
            return entry;
        })]);
        await write.CommitAsync(ct);
        audit.Committed(children.Count);
        signals.JobQueued(children: true);
        return true;
    }

    /// <returns>The job's created_at.</returns>
    private async Task<DateTime> InsertAsync(WriteScope write, NewJob job, CancellationToken ct)
    {
        var now = Now();
        await write.LaterAsync(
            """
            INSERT INTO jobs (id, type, status, params, dry_run, actor, principal_id, source_ip, created_at, concurrency_key, approval_expires_at,
                parent_id, shard_index, shard_round, shard_hosts, last_seq, scoped, submitter_namespaces, secrets_sealed, retry_of, trace_parent)
            VALUES (@Id, @Type, @Status, @Params, @DryRun, @Actor, @PrincipalId, @SourceIp, @now, @ConcurrencyKey, @ApprovalExpiresAt,
                @ParentId, @ShardIndex, @ShardRound, @ShardHosts, 1, @yes, @SubmitterNamespaces, @yes, @RetryOf, @traceParent)
            """,
            new
            {
                job.Id, job.Type, job.Status, Params = job.Params.ToJsonString(), job.DryRun, job.Actor, job.PrincipalId, job.SourceIp, now, job.ConcurrencyKey,
                job.ApprovalExpiresAt, job.ParentId, job.ShardIndex, job.ShardRound, job.ShardHosts, yes = true,
                SubmitterNamespaces = ScopeHolder.ToJson(job.SubmitterNamespaces), job.RetryOf, traceParent = JobTracing.CurrentParent(),
            });
        foreach (var target in job.Targets.Distinct())
            await write.LaterAsync("INSERT INTO job_targets (job_id, cluster, namespace) VALUES (@Id, @Cluster, @Namespace)",
                new { job.Id, target.Cluster, target.Namespace });
        for (var i = 0; i < job.Steps.Count; i++)
        {
            await write.LaterAsync("INSERT INTO job_steps (job_id, step_order, name, kind, status) VALUES (@JobId, @Order, @Name, @Kind, 'pending')",
                new { JobId = job.Id, Order = i + 1, job.Steps[i].Name, job.Steps[i].Kind });
        }
        var created = new JsonObject
        {
            ["status"] = job.Status,
            ["type"] = job.Type,
            ["actor"] = job.Actor,
            ["dry_run"] = job.DryRun,
        };
        if (job.ParentId is not null)
        {
            created["parent_id"] = job.ParentId;
            created["shard_index"] = job.ShardIndex;
        }
        if (job.RetryOf is not null)
            created["retry_of"] = job.RetryOf;
        // The job's first event, seq 1: the row is inserted with last_seq 1 (see AppendEventsAsync).
        await eventRows.InsertAsync(write, job.Id, 1, now, [new NewEvent("job.created", null, created)], ct);
        if (job.Status == JobStatus.Pending)
            await wakeUps.NotifyLaterAsync(write, job.Id);
        return now;
    }

    /// <summary>The child jobs of <paramref name="parentId"/>'s newest round (or of <paramref name="round"/>), by shard.</summary>
    public async Task<IReadOnlyList<JobRow>> ChildrenAsync(string parentId, int? round, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<JobRow>(
            $"""
            SELECT {JobColumns} FROM jobs WHERE parent_id = @parentId
                AND shard_round = COALESCE(@round, (SELECT MAX(shard_round) FROM jobs WHERE parent_id = @parentId))
            ORDER BY shard_index
            """, new { parentId, round })).Select(Normalize).ToList();
    }

    /// <summary>
    /// Appends a child's events to the parent's stream and moves the child's relay mark to <paramref name="upTo"/>, in one
    /// transaction, if <paramref name="owner"/> still holds the parent: every child event reaches the parent exactly once,
    /// also across a crash of the parent's worker. False: lease lost.
    /// </summary>
    public async Task<bool> RelayAsync(string parentId, string owner, string childId, long upTo, IReadOnlyList<NewEvent> events, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        if (!await AppendEventsAsync(write.Connection, write.Transaction, parentId, owner, events, ct))
            return false;
        // Forward only: a relay that lost a race with another relaying worker writes nothing.
        if (await write.Connection.ExecuteAsync("UPDATE jobs SET relayed_seq = @upTo WHERE id = @childId AND parent_id = @parentId AND relayed_seq < @upTo",
            new { upTo, childId, parentId }, write.Transaction) == 0)
            return false;
        await write.CommitAsync(ct);
        if (events.Count > 0)
            signals.EventsAppended(parentId);
        return true;
    }

    public async Task<(JobRow Job, IReadOnlyList<StepRow> Steps)?> GetAsync(string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var job = await connection.QuerySingleOrDefaultAsync<JobRow>($"SELECT {JobColumns} FROM jobs WHERE id = @id", new { id });
        if (job is null)
            return null;
        var steps = (await connection.QueryAsync<StepRow>($"SELECT {StepColumns} FROM job_steps WHERE job_id = @id ORDER BY step_order", new { id })).AsList();
        return (Normalize(job), steps.Select(Normalize).ToList());
    }

    /// <param name="namespaces">A principal's namespace allowlist: only jobs whose every target lies in it (null: every job).</param>
    public async Task<IReadOnlyList<JobRow>> ListAsync(string? status, string? type, string? before, int limit, IReadOnlyList<string>? namespaces, CancellationToken ct)
    {
        var sql = new System.Text.StringBuilder($"SELECT {JobColumns} FROM jobs WHERE 1=1");
        if (namespaces is not null)
            sql.Append(" AND ").Append(ScopeSql.JobWithinNamespaces(dialect));
        if (status is not null)
            sql.Append(" AND status = @status");
        if (type is not null)
            sql.Append(" AND type = @type");
        if (before is not null)
            sql.Append(" AND id < @before");
        sql.Append(" ORDER BY id DESC LIMIT @limit");
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<JobRow>(sql.ToString(), new { status, type, before, limit, namespaces = namespaces?.ToArray(), scopedYes = true })).Select(Normalize).ToList();
    }

    /// <summary>
    /// Claims up to <paramref name="leases"/>.Count of the oldest claimable jobs, one per lease token: pending ones, or
    /// running ones whose lease expired (their worker died; such a job resumes at its first unfinished step). A pending
    /// job whose concurrency key is held by a running job waits. A claimed row is invisible to other workers until its
    /// lease expires. Each claim commits its job.started event and audit entry with it, all claims of a call in one
    /// transaction, and reads the job's steps with it, after taking it (so no write of a previous holder can come between).
    /// The oldest pending and the oldest expired jobs are looked up apart, each in index order: one query with
    /// <c>status = 'pending' OR status = 'running'</c> sorted every queued job on every claim. How a row is taken is the
    /// database's (<see cref="IJobClaims"/>).
    /// <para>
    /// <b>At least once.</b> A job runs to its end at least once, whichever process dies when; a step may run more than
    /// once, so steps must be idempotent. The database is the only record; what is durable at each checkpoint, and what
    /// a death right there leaves:
    /// </para>
    /// <list type="number">
    /// <item>Claim, not committed (<see cref="IJobClaims.ClaimAsync"/>): the job is set running with this lease in an open
    /// transaction. Death: the transaction rolls back; the job is still pending (or still expired) and the next claim of
    /// any process takes it.</item>
    /// <item>Claim committed with job.started and its audit entry (<see cref="StartedAsync"/>): the job is running with this
    /// lease, <c>attempt</c> counted. Death: nobody renews the lease; once it expires, the expired search of a claim finds
    /// the job and the next attempt resumes it at its first unfinished step (attempt &gt; 1, audited as job.resume).</item>
    /// <item>Heartbeat (<see cref="RenewLeaseAsync"/>, every third of the lease): pushes the expiry on while the process
    /// lives. A renewal that finds the lease gone (it expired and another worker took the job) stops this run: every later
    /// write of it is refused by its lease check, so the new holder's work is never overwritten.</item>
    /// <item>Step started, then finished (<see cref="UpdateStepAsync"/>, guarded by the lease; a start may be held back and
    /// written with the finish): each commit records the step's state with its events. Death during a step: the step is
    /// not recorded as succeeded, so the next attempt runs it again (the second run of the "at least once"). Death after
    /// its finish committed: the next attempt starts at the step after it.</item>
    /// <item>Finish (<see cref="FinishAsync"/>, guarded by the lease): the last step, the job's final status, its closing
    /// events and audit entries, the lease cleared, in one transaction. Death before it commits: the job resumes as in 2
    /// and reruns only its last step if that step's finish was to be written here. After it: the job is over, never
    /// claimed again. A graceful shutdown instead releases the lease (<see cref="ReleaseLeaseAsync"/>): the job is
    /// claimable at once, as in 2 without the wait.</item>
    /// </list>
    /// </summary>
    /// <param name="leases">One lease token per job wanted (each claim gets its own, see <see cref="JobWorker"/>).</param>
    /// <param name="worker">The process claiming (recorded in the job.started event).</param>
    /// <param name="children">Claim only child jobs (shards), or only the others: each has its own worker slots, so a
    /// parent waiting for its children never holds the slots they need.</param>
    public async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(IReadOnlyList<string> leases, string worker, TimeSpan lease, bool children, CancellationToken ct)
    {
        var query = children ? ChildClaims : TopLevelClaims;
        var claimed = new List<ClaimedJob>(leases.Count);
        for (var tries = 0; tries < 5; tries++)
        {
            // After a unique violation (two pending jobs of one concurrency key, neither running yet) one at a time.
            var owners = tries == 0 ? leases : [leases[0]];
            try
            {
                // Checkpoint 1: the rows taken, in a transaction not yet committed.
                await using var claim = await claims.ClaimAsync<JobRow, StepRow>(query, owners, lease, Now, j => j.Id, s => s.JobId, ct);
                for (var i = 0; i < claim.Rows.Count; i++)
                    claimed.Add(new ClaimedJob(Normalize(claim.Rows[i].Row), owners[i], [.. claim.Rows[i].Children.Select(Normalize)]));
                // Checkpoint 2: committed, with job.started and the audit entry.
                if (claim.Write is { } write)
                    await StartedAsync(write, claimed, worker, ct);
                if (!claim.LookAgain)
                    break;
            }
            catch (Exception e) when (Database.IsUniqueViolation(e) && tries < 4)
            {
                // Another worker claimed a job with the same concurrency key a moment earlier; look again.
                claimed.Clear();
            }
        }
        return claimed;
    }

    private static readonly ClaimQuery TopLevelClaims = Claims("parent_id IS NULL");
    private static readonly ClaimQuery ChildClaims = Claims("parent_id IS NOT NULL");

    private static ClaimQuery Claims(string kind) => new(
        Table: "jobs",
        Pending: $"SELECT id, created_at FROM jobs WHERE status = 'pending' AND {kind} AND {FreeKey} ORDER BY created_at, id LIMIT @n",
        Expired: $"SELECT id, created_at FROM jobs WHERE status = 'running' AND lease_expires_at < @now AND {kind} AND {FreeKey} ORDER BY created_at, id LIMIT @n",
        Claimable: $"{kind} AND {FreeKey} AND (status = 'pending' OR (status = 'running' AND lease_expires_at < @now))",
        // last_seq makes room for the job.started event, written with the claim (StartedAsync).
        Set: "status = 'running', lease_owner = @owner, lease_expires_at = @expires, attempt = attempt + 1, started_at = COALESCE(started_at, @now), " +
            "last_seq = last_seq + 1",
        Columns: JobColumns,
        ChildTable: "job_steps", ChildColumns: StepColumns, ChildKey: "job_id", ChildOrder: "step_order");

    /// <summary>Records the start of claimed jobs in the claim's own transaction (no claim without it) and commits.</summary>
    private async Task StartedAsync(WriteScope write, List<ClaimedJob> claimed, string worker, CancellationToken ct)
    {
        if (claimed.Count == 0)
            return;
        var entries = new List<AuditEntry>(claimed.Count);
        var now = Now();
        foreach (var job in claimed.Select(c => c.Job))
        {
            var started = new JsonObject { ["worker"] = worker, ["attempt"] = job.Attempt, ["resumed"] = job.Attempt > 1 };
            // Its seq was taken by the claim's update (the row is this claim's until commit).
            await eventRows.InsertAsync(write, job.Id, job.LastSeq, now, [new NewEvent("job.started", null, started)], ct);
            // A later attempt is a retried job (failed -> pending -> running) or one taken over from a dead worker.
            entries.Add(JobAudit.Entry(job, job.Attempt == 1 ? "job.start" : "job.resume", AuditStatus.Success, null));
        }
        await CommitAsync(write, entries, ct);
        foreach (var claim in claimed)
            signals.EventsAppended(claim.Job.Id);
    }

    /// <summary>
    /// Renews the lease. Returns null when the lease was lost, else whether a cancel was requested. Checkpoint 3 of
    /// <see cref="ClaimAsync"/>: committed, the job stays this worker's for another lease.
    /// </summary>
    public async Task<(bool CancelRequested, string? By)?> RenewLeaseAsync(string id, string owner, TimeSpan lease, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(engine: true, ct);
        var row = await write.Connection.QuerySingleOrDefaultAsync<LeaseState>(
            "UPDATE jobs SET lease_expires_at = @expires WHERE id = @id AND lease_owner = @owner AND status = 'running' RETURNING cancel_requested, cancel_requested_by",
            new { id, owner, expires = Now() + lease }, write.Transaction);
        await write.CommitAsync(ct);
        return row is null ? null : (row.CancelRequested, row.CancelRequestedBy);
    }

    /// <summary>Lets the job be claimed at once (graceful shutdown: a restart or another worker resumes it without waiting).</summary>
    public async Task ReleaseLeaseAsync(string id, string owner)
    {
        await using var write = await database.WriteAsync(engine: true, CancellationToken.None);
        await write.Connection.ExecuteAsync("UPDATE jobs SET lease_expires_at = @now WHERE id = @id AND lease_owner = @owner AND status = 'running'",
            new { id, owner, now = Now() }, write.Transaction);
        await write.CommitAsync();
    }

    public async Task<bool> SetDeadlineAsync(string id, string owner, DateTime deadline, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(engine: true, ct);
        var set = await write.Connection.ExecuteAsync("UPDATE jobs SET deadline_at = @deadline WHERE id = @id AND lease_owner = @owner AND deadline_at IS NULL",
            new { id, owner, deadline }, write.Transaction);
        await write.CommitAsync(ct);
        return set > 0;
    }

    /// <summary>Appends events for a job <paramref name="owner"/> runs. False: lease lost.</summary>
    public async Task<bool> AppendAsync(string jobId, string owner, IReadOnlyList<NewEvent> events, CancellationToken ct)
    {
        if (events.Count == 0)
            return await UpdateNothingAsync(jobId, owner, ct);
        await using var write = await database.WriteAsync(ct);
        if (await AppendEventsReturningAsync(write.Connection, write.Transaction, jobId, owner, events, ct, write) is not { } appended)
            return false;
        await write.CommitAsync(ct);
        // Still in this process's write turn, so live clients get one job's appends in commit order (a client that
        // finds a gap reads the database anyway).
        signals.EventsAppended(jobId, appended.First, appended.Ts, events);
        return true;
    }

    private async Task<bool> UpdateNothingAsync(string jobId, string owner, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        return await AppendEventsAsync(write.Connection, write.Transaction, jobId, owner, [], ct);
    }

    /// <summary>Commits, with the audit entries of the change chained into the same transaction.</summary>
    private async Task CommitAsync(WriteScope write, List<AuditEntry> audited, CancellationToken ct)
    {
        if (audited.Count > 0)
            await audit.AppendWithinAsync(write, audited);
        await write.CommitAsync(ct);
        if (audited.Count > 0)
            audit.Committed(audited.Count);
    }

    /// <summary>
    /// Writes a step's change (its row, events and audit entries) in one transaction, if <paramref name="owner"/> still holds
    /// the job. False: lease lost. Checkpoint 4 of <see cref="ClaimAsync"/>: a step recorded succeeded is not run again.
    /// </summary>
    public async Task<bool> UpdateStepAsync(StepWrite change, string owner, CancellationToken ct)
    {
        var step = change.Step;
        await using var write = await database.WriteAsync(engine: true, ct);
        if (!await AppendEventsAsync(write.Connection, write.Transaction, step.JobId, owner, change.Events, ct, write))
            return false;
        await SaveStepAsync(write, step);
        await CommitAsync(write, [.. change.Audited], ct);
        signals.EventsAppended(step.JobId);
        return true;
    }

    private static Task SaveStepAsync(WriteScope write, StepRow step) => write.LaterAsync(
        """
        UPDATE job_steps SET status = @Status, detail = @Detail, attempts = @Attempts, started_at = @StartedAt,
            finished_at = @FinishedAt, output = @Output
        WHERE job_id = @JobId AND step_order = @StepOrder
        """, step);

    /// <summary>
    /// Moves a job to a new status (checked against the state machine) with its closing events. <paramref name="lastStep"/>:
    /// the job's last step, finished just before, written in the same transaction (one write less per job) with its
    /// events and audit entry ahead of the job's. Checkpoint 5 of <see cref="ClaimAsync"/>: committed, the job is never claimed again.
    /// </summary>
    public async Task<bool> FinishAsync(JobRow job, string owner, string status, string? error, IReadOnlyList<NewEvent> events, CancellationToken ct,
        AuditEntry? audited = null, StepWrite? lastStep = null)
    {
        JobStatus.EnsureCanMove(job.Status, status);
        await using var write = await database.WriteAsync(engine: true, ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        if (!await AppendEventsAsync(connection, tx, job.Id, owner, lastStep is null ? events : [.. lastStep.Events, .. events], ct, write))
            return false;
        if (lastStep is not null)
            await SaveStepAsync(write, lastStep.Step);
        // Steps that never ran are skipped, not left pending, once the job is over (a job succeeds only when every step did).
        if (status != JobStatus.Succeeded)
            await write.LaterAsync("UPDATE job_steps SET status = 'skipped' WHERE job_id = @id AND status = 'pending'", new { id = job.Id });
        await write.LaterAsync(
            "UPDATE jobs SET status = @status, error = @error, finished_at = @now, lease_owner = NULL, lease_expires_at = NULL WHERE id = @id",
            new { id = job.Id, status, error, now = Now() });
        var entries = new List<AuditEntry>(3);
        if (lastStep is not null)
            entries.AddRange(lastStep.Audited);
        if (audited is not null)
            entries.Add(audited);
        await CommitAsync(write, entries, ct);
        signals.EventsAppended(job.Id);
        signals.JobFinished();
        return true;
    }

    /// <summary>
    /// Appends events with consecutive seqs. The seq comes from bumping jobs.last_seq, which locks the job row
    /// until commit, so seqs of one job are committed in order and a reader that saw seq N never later finds
    /// an N-1 it missed. With an owner, nothing is written unless that owner still holds the running job.
    /// </summary>
    /// <param name="later">The scope of <paramref name="tx"/>, to hold the events' insert for its commit (<see cref="WriteScope.LaterAsync"/>).</param>
    internal async Task<bool> AppendEventsAsync(DbConnection connection, DbTransaction tx, string jobId, string? owner, IReadOnlyList<NewEvent> events, CancellationToken ct,
        WriteScope? later = null)
    {
        if (events.Count == 0)
        {
            return owner is null || await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM jobs WHERE id = @jobId AND lease_owner = @owner AND status = 'running'", new { jobId, owner }, tx) > 0;
        }
        return await AppendEventsReturningAsync(connection, tx, jobId, owner, events, ct, later) is not null;
    }

    /// <summary>As <see cref="AppendEventsAsync"/> for at least one event: the seq of the first (the others follow it) and their timestamp, or null when the lease is lost.</summary>
    internal async Task<(long First, DateTime Ts)?> AppendEventsReturningAsync(DbConnection connection, DbTransaction tx, string jobId, string? owner, IReadOnlyList<NewEvent> events, CancellationToken ct,
        WriteScope? later = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(events.Count);
        var guard = owner is null ? "" : " AND lease_owner = @owner AND status = 'running'";
        var last = await connection.QuerySingleOrDefaultAsync<long?>(
            $"UPDATE jobs SET last_seq = last_seq + @n WHERE id = @jobId{guard} RETURNING last_seq", new { jobId, owner, n = events.Count }, tx);
        if (last is null)
            return null;
        var first = last.Value - events.Count + 1;
        var now = Now();
        for (var i = 0; i < events.Count; i++)
        {
            if (events[i].Final)
                (events[i].Data ?? [])["events"] = first + i;
        }
        if (later is not null)
            await eventRows.InsertAsync(later, jobId, first, now, events, ct);
        else
            await eventRows.InsertAsync(connection, tx, jobId, first, now, events, ct);
        return (first, now);
    }

    public async Task<IReadOnlyList<JobEventRow>> EventsAfterAsync(string jobId, long after, int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<JobEventRow>(
            "SELECT job_id, seq, ts, type, step_order, data FROM job_events WHERE job_id = @jobId AND seq > @after ORDER BY seq LIMIT @limit",
            new { jobId, after, limit });
        return rows.Select(r => { r.Ts = r.Ts.AsUtc(); return r; }).ToList();
    }

    /// <summary>The last <paramref name="limit"/> events before <paramref name="before"/>, oldest first: a page of a long log read backwards.</summary>
    public async Task<IReadOnlyList<JobEventRow>> EventsBeforeAsync(string jobId, long before, int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<JobEventRow>(
            "SELECT job_id, seq, ts, type, step_order, data FROM job_events WHERE job_id = @jobId AND seq < @before ORDER BY seq DESC LIMIT @limit",
            new { jobId, before, limit });
        return rows.Reverse().Select(r => { r.Ts = r.Ts.AsUtc(); return r; }).ToList();
    }

    public async Task<long> CountAsync(string status, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM jobs WHERE status = @status", new { status });
    }

    /// <summary>Pending top-level jobs a free worker could take now (their concurrency key is not held): what <see cref="JobAdmission"/> paces.</summary>
    public async Task<long> CountClaimableAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM jobs WHERE status = 'pending' AND parent_id IS NULL AND {FreeKey}");
    }

    /// <summary>The running job holding <paramref name="concurrencyKey"/>, if any (to explain why a pending job waits).</summary>
    public async Task<string?> HolderOfAsync(string concurrencyKey, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<string>(
            "SELECT id FROM jobs WHERE concurrency_key = @concurrencyKey AND status = 'running' LIMIT 1", new { concurrencyKey });
    }

    private sealed class LeaseState
    {
        public bool CancelRequested { get; set; }
        public string? CancelRequestedBy { get; set; }
    }

    internal static JobRow Normalize(JobRow j)
    {
        j.CreatedAt = j.CreatedAt.AsUtc();
        j.StartedAt = j.StartedAt.AsUtc();
        j.FinishedAt = j.FinishedAt.AsUtc();
        j.LeaseExpiresAt = j.LeaseExpiresAt.AsUtc();
        j.DeadlineAt = j.DeadlineAt.AsUtc();
        j.ApprovalExpiresAt = j.ApprovalExpiresAt.AsUtc();
        j.EventsPrunedAt = j.EventsPrunedAt.AsUtc();
        return j;
    }

    private static StepRow Normalize(StepRow s)
    {
        s.StartedAt = s.StartedAt.AsUtc();
        s.FinishedAt = s.FinishedAt.AsUtc();
        return s;
    }
}
