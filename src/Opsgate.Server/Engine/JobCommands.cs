using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Audit;
using Opsgate.Server.Engine.Notifications;
using Opsgate.Server.Observability;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

internal enum CommandOutcome { Done, NotFound, WrongState }

/// <summary>
/// What people do to jobs (cancel, retry, approve, reject) and approval expiry. Each change is one transaction
/// whose UPDATE is conditioned on the current status, so two people acting at once cannot both win, and the
/// move is checked against <see cref="JobStatus"/>'s state machine.
/// </summary>
internal sealed class JobCommands(Database database, JobStore store, JobSignals signals, JobNotifier notifier, AuditWriter audit, OpsgateMetrics metrics,
    IJobWakeUps wakeUps)
{
    /// <summary>Pending or waiting jobs are cancelled at once; a running job is asked to stop (its step is interrupted promptly).</summary>
    /// <param name="systemAction">Set when the server cancels on its own (a shard cancelled by its parent): the audit action then
    /// written for a job that had not started (a person's cancel is audited by its endpoint).</param>
    public async Task<(CommandOutcome Outcome, string? Status)> CancelAsync(string id, string by, CancellationToken ct, string? systemAction = null)
    {
        // A pending job can be claimed between reading its status and cancelling it; then it is cancelled as a running one.
        for (var tries = 0; ; tries++)
        {
            var result = await TryCancelAsync(id, by, systemAction, ct);
            if (result.Outcome != CommandOutcome.WrongState || !JobStatus.CanMove(result.Status!, JobStatus.Cancelled) || tries == 2)
                return result;
        }
    }

    private async Task<(CommandOutcome Outcome, string? Status)> TryCancelAsync(string id, string by, string? systemAction, CancellationToken ct)
    {
        var current = await StatusAsync(id, ct);
        if (current is null)
            return (CommandOutcome.NotFound, null);
        if (current == JobStatus.Running)
        {
            await using var write = await database.WriteAsync(ct);
            var (connection, tx) = (write.Connection, write.Transaction);
            var marked = await connection.ExecuteAsync(
                "UPDATE jobs SET cancel_requested = @yes, cancel_requested_by = @by WHERE id = @id AND status = 'running'", new { id, by, yes = true }, tx);
            if (marked == 0)
                return (CommandOutcome.WrongState, await StatusAsync(id, ct));
            await store.AppendEventsAsync(connection, tx, id, null, [new NewEvent("job.cancel_requested", null, new JsonObject { ["by"] = by })], ct);
            await tx.CommitAsync(ct);
            signals.EventsAppended(id);
            signals.Cancel(id, by);
            return (CommandOutcome.Done, JobStatus.Running);
        }
        if (!JobStatus.CanMove(current, JobStatus.Cancelled))
            return (CommandOutcome.WrongState, current);
        return await FinishWaitingAsync(id, current, $"cancelled by {by}", ct, systemAction: systemAction)
            ? (CommandOutcome.Done, JobStatus.Cancelled)
            : (CommandOutcome.WrongState, await StatusAsync(id, ct));
    }

    /// <summary>
    /// Cancels the unfinished child jobs of a parent that finished (cheap when there are none: one indexed query).
    /// Best effort: a child this misses still ends on its own, and its result no longer matters to anyone.
    /// </summary>
    public async Task CancelChildrenAsync(string parentId, string by)
    {
        IReadOnlyList<string> open;
        await using (var connection = await database.OpenAsync(CancellationToken.None))
            open = (await connection.QueryAsync<string>(
                "SELECT id FROM jobs WHERE parent_id = @parentId AND status IN ('pending', 'running', 'waiting_approval')", new { parentId })).AsList();
        foreach (var child in open)
            await CancelAsync(child, by, CancellationToken.None, systemAction: "job.cancel");
    }

    /// <summary>
    /// A failed job runs again from the step that failed; steps that succeeded are not repeated. A sharded parent
    /// forgets its round of child jobs, so its step creates new ones.
    /// </summary>
    public async Task<(CommandOutcome Outcome, string? Status)> RetryAsync(string id, string by, CancellationToken ct)
    {
        var current = await StatusAsync(id, ct);
        if (current is null)
            return (CommandOutcome.NotFound, null);
        if (!JobStatus.CanMove(current, JobStatus.Pending) || current != JobStatus.Failed)
            return (CommandOutcome.WrongState, current);
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        var moved = await connection.ExecuteAsync(
            """
            UPDATE jobs SET status = 'pending', finished_at = NULL, error = NULL, deadline_at = NULL, cancel_requested = @no,
                cancel_requested_by = NULL, lease_owner = NULL, lease_expires_at = NULL, shard_round = NULL
            WHERE id = @id AND status = 'failed'
            """, new { id, no = false }, tx);
        if (moved == 0)
            return (CommandOutcome.WrongState, await StatusAsync(id, ct));
        await connection.ExecuteAsync(
            "UPDATE job_steps SET status = 'pending', detail = NULL, finished_at = NULL WHERE job_id = @id AND status IN ('failed', 'skipped', 'running')", new { id }, tx);
        await store.AppendEventsAsync(connection, tx, id, null, [new NewEvent("job.retried", null, new JsonObject { ["by"] = by })], ct);
        await NotifyAsync(connection, tx, id);
        await tx.CommitAsync(ct);
        signals.EventsAppended(id);
        signals.JobQueued();
        return (CommandOutcome.Done, JobStatus.Pending);
    }

    /// <param name="byNamespaces">The approver's namespace allowlist (null: none): targets the job learns at run time must lie in it too.</param>
    public async Task<(CommandOutcome Outcome, string? Status)> ApproveAsync(string id, string by, IReadOnlyList<string>? byNamespaces, string? comment, CancellationToken ct)
    {
        if (await TryApproveAsync(id, by, byNamespaces, comment, ct))
        {
            signals.EventsAppended(id);
            signals.JobQueued();
            return (CommandOutcome.Done, JobStatus.Pending);
        }
        var current = await StatusAsync(id, ct);
        // Still waiting, so its approval window closed and housekeeping has not got to it yet: expire it now.
        if (current == JobStatus.WaitingApproval && await ExpireApprovalsAsync(ct) > 0)
            current = await StatusAsync(id, ct);
        return (current is null ? CommandOutcome.NotFound : CommandOutcome.WrongState, current);
    }

    /// <summary>Moves a job waiting for approval, whose approval window is still open, to pending.</summary>
    private async Task<bool> TryApproveAsync(string id, string by, IReadOnlyList<string>? byNamespaces, string? comment, CancellationToken ct)
    {
        JobStatus.EnsureCanMove(JobStatus.WaitingApproval, JobStatus.Pending);
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        var moved = await connection.ExecuteAsync(
            """
            UPDATE jobs SET status = 'pending', decided_by = @by, decision_comment = @comment, approver_namespaces = @approverNamespaces
            WHERE id = @id AND status = 'waiting_approval' AND (approval_expires_at IS NULL OR approval_expires_at >= @now)
            """,
            new { id, by, comment, now = store.Now(), approverNamespaces = ScopeHolder.ToJson(byNamespaces) }, tx);
        if (moved == 0)
            return false;
        await store.AppendEventsAsync(connection, tx, id, null, [new NewEvent("job.approved", null, new JsonObject { ["by"] = by, ["comment"] = comment })], ct);
        await NotifyAsync(connection, tx, id);
        await tx.CommitAsync(ct);
        return true;
    }

    public async Task<(CommandOutcome Outcome, string? Status)> RejectAsync(string id, string by, string? comment, CancellationToken ct)
    {
        var current = await StatusAsync(id, ct);
        if (current is null)
            return (CommandOutcome.NotFound, null);
        if (current != JobStatus.WaitingApproval)
            return (CommandOutcome.WrongState, current);
        var reason = comment is { Length: > 0 } ? $"rejected by {by}: {comment}" : $"rejected by {by}";
        return await FinishWaitingAsync(id, JobStatus.WaitingApproval, reason, ct, by, comment)
            ? (CommandOutcome.Done, JobStatus.Cancelled)
            : (CommandOutcome.WrongState, await StatusAsync(id, ct));
    }

    /// <summary>Cancels jobs whose approval window closed; returns how many.</summary>
    public async Task<int> ExpireApprovalsAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var expired = (await connection.QueryAsync<string>(
            "SELECT id FROM jobs WHERE status = 'waiting_approval' AND approval_expires_at < @now", new { now = store.Now() })).AsList();
        var count = 0;
        foreach (var id in expired)
        {
            if (await FinishWaitingAsync(id, JobStatus.WaitingApproval, "nobody approved it before the approval timeout", ct, systemAction: "job.approval_expired"))
                count++;
        }
        return count;
    }

    public async Task<string?> StatusAsync(string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<string>("SELECT status FROM jobs WHERE id = @id", new { id });
    }

    /// <summary>
    /// Ends a job that never started (pending or waiting approval) as cancelled, its steps skipped. A person's cancel or
    /// reject is audited by its endpoint; a change the server makes on its own (<paramref name="systemAction"/>) is audited here.
    /// </summary>
    private async Task<bool> FinishWaitingAsync(string id, string from, string reason, CancellationToken ct, string? decidedBy = null, string? comment = null,
        string? systemAction = null)
    {
        JobStatus.EnsureCanMove(from, JobStatus.Cancelled);
        var job = await FinishWaitingRowAsync(id, from, reason, decidedBy, comment, ct);
        if (job is null)
            return false;
        signals.EventsAppended(id);
        if (job.ParentId is null) // a shard is announced as part of its parent
            notifier.JobFinished(id);
        metrics.JobEnded(job.Type, JobStatus.Cancelled);
        if (systemAction is not null)
        {
            await audit.AppendAsync(new AuditEntry
            {
                Actor = "opsgate",
                Action = systemAction,
                ResourceKind = "job",
                ResourceName = id,
                Status = AuditStatus.Success,
                ErrorMessage = reason,
                PrincipalId = "system:engine",
                AuthMethod = "system",
                DryRun = job.DryRun,
                JobId = id,
            });
        }
        return true;
    }

    private async Task<JobRow?> FinishWaitingRowAsync(string id, string from, string reason, string? decidedBy, string? comment, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        var job = await connection.QuerySingleOrDefaultAsync<JobRow>(
            """
            UPDATE jobs SET status = 'cancelled', error = @reason, finished_at = @now,
                decided_by = COALESCE(@decidedBy, decided_by), decision_comment = COALESCE(@comment, decision_comment)
            WHERE id = @id AND status = @from
            RETURNING type, dry_run, parent_id
            """, new { id, from, reason, now = store.Now(), decidedBy, comment }, tx);
        if (job is null)
            return null;
        await connection.ExecuteAsync("UPDATE job_steps SET status = 'skipped' WHERE job_id = @id AND status = 'pending'", new { id }, tx);
        await store.AppendEventsAsync(connection, tx, id, null,
            [new NewEvent("job.finished", null, new JsonObject { ["status"] = JobStatus.Cancelled, ["error"] = reason }, Final: true)], ct);
        await tx.CommitAsync(ct);
        return job;
    }

    private Task NotifyAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx, string id) => wakeUps.NotifyAsync(connection, tx, id);
}
