using Dapper;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Projects;

/// <summary>A playbook project: a git repository and the ref runs use (null: the remote's HEAD).</summary>
internal sealed record ProjectInfo(
    string Id, string Name, string GitRepo, string? Ref, string? Credential, DateTime CreatedAt, string CreatedBy, string? LastCommit, DateTime? SyncedAt);

internal sealed class ProjectConflictException(string message) : Exception(message);

/// <summary>Projects and the commits job steps pinned (<c>projects</c>, <c>project_pins</c>).</summary>
internal sealed class ProjectStore(Database database, JobStore jobs, JobSignals signals, TimeProvider time, ISqlText dialect)
{
    private const string Columns = "id, name, git_repo, ref, credential, created_at, created_by, last_commit, synced_at";

    public DateTime Now() => time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();

    public async Task<IReadOnlyList<ProjectInfo>> ListAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<Row>($"SELECT {Columns} FROM projects ORDER BY name")).Select(r => r.Info).ToList();
    }

    /// <summary>By id (as returned on create) or by name; names that could be ids are refused on create, so this is never ambiguous.</summary>
    public async Task<ProjectInfo?> FindAsync(string idOrName, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM projects WHERE id = @idOrName OR name = @idOrName", new { idOrName });
        return row?.Info;
    }

    public async Task InsertAsync(ProjectInfo project, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        if (project.Credential is { } credential && await write.Connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM credentials WHERE name = @credential", new { credential }, write.Transaction) == 0)
            throw new ProjectConflictException($"credential '{credential}' was deleted meanwhile");
        try
        {
            var inserted = await write.Connection.ExecuteAsync(
                $"""
                INSERT INTO projects ({Columns}) VALUES (@Id, @Name, @GitRepo, @Ref, @Credential, @CreatedAt, @CreatedBy, @LastCommit, @SyncedAt)
                ON CONFLICT (name) DO NOTHING
                """, project, write.Transaction);
            if (inserted == 0)
                throw new ProjectConflictException($"project '{project.Name}' already exists");
            await write.CommitAsync(ct);
        }
        catch (Exception e) when (Database.IsForeignKeyViolation(e))
        {
            // PostgreSQL: the credential's delete committed after the check above.
            throw new ProjectConflictException($"credential '{project.Credential}' was deleted meanwhile");
        }
    }

    /// <summary>False when there is no such project; refused while a job that has not finished names it (by id or <paramref name="name"/>).</summary>
    public async Task<bool> DeleteAsync(string id, string name, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        if (await UnfinishedJobs.UsingAsync(write, dialect, "project", id, name) is { } job)
            throw new ProjectConflictException($"project '{name}' is used by job {job}, which has not finished; delete it after the job ends (or cancel the job)");
        var removed = await write.Connection.ExecuteAsync("DELETE FROM projects WHERE id = @id", new { id }, write.Transaction);
        await write.CommitAsync(ct);
        return removed > 0;
    }

    public async Task RecordSyncAsync(string id, string commit, DateTime at, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        await write.Connection.ExecuteAsync("UPDATE projects SET last_commit = @commit, synced_at = @at WHERE id = @id", new { id, commit, at }, write.Transaction);
        await write.CommitAsync(ct);
    }

    /// <summary>The commit a job's step pinned on an earlier attempt, or null.</summary>
    public async Task<(string ProjectId, string Commit)?> PinOfAsync(string jobId, int stepOrder, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var pin = await connection.QuerySingleOrDefaultAsync<PinRow>(
            "SELECT project_id, commit_sha FROM project_pins WHERE job_id = @jobId AND step_order = @stepOrder", new { jobId, stepOrder });
        return pin is null ? null : (pin.ProjectId, pin.CommitSha);
    }

    /// <summary>Whether some step of <paramref name="jobId"/> pinned <paramref name="commit"/> of the project (a shard checks its parent's pin).</summary>
    public async Task<bool> PinnedAsync(string jobId, string projectId, string commit, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM project_pins WHERE job_id = @jobId AND project_id = @projectId AND commit_sha = @commit", new { jobId, projectId, commit }) > 0;
    }

    /// <summary>
    /// Every commit a job that has not finished (pending, waiting for approval, running) may run: the pins of its steps,
    /// and a <c>project_commit</c> parameter (a shard not yet started runs its parent's commit). The project checkout
    /// cache keeps these whatever their age.
    /// </summary>
    public async Task<HashSet<string>> PinnedCommitsAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var given = $"SELECT {dialect.JsonText("params", "project_commit")} FROM jobs WHERE status IN (@pending, @waiting, @running) AND {dialect.JsonIsString("params", "project_commit")}";
        var commits = await connection.QueryAsync<string>(new CommandDefinition(
            $"""
            SELECT p.commit_sha FROM project_pins p JOIN jobs j ON j.id = p.job_id WHERE j.status IN (@pending, @waiting, @running)
            UNION
            {given}
            """,
            new { pending = JobStatus.Pending, waiting = JobStatus.WaitingApproval, running = JobStatus.Running }, cancellationToken: ct));
        return commits.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// Pins the step to <paramref name="commit"/> and appends <paramref name="announce"/>, in one transaction, if
    /// <paramref name="owner"/> still holds the job. False: lease lost, nothing written.
    /// </summary>
    public async Task<bool> PinAsync(string jobId, string owner, int stepOrder, string projectId, string commit, NewEvent announce, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        if (!await jobs.AppendEventsAsync(write.Connection, write.Transaction, jobId, owner, [announce], ct))
            return false;
        await write.Connection.ExecuteAsync(
            """
            INSERT INTO project_pins (job_id, step_order, project_id, commit_sha, pinned_at) VALUES (@jobId, @stepOrder, @projectId, @commit, @now)
            ON CONFLICT (job_id, step_order) DO UPDATE SET project_id = excluded.project_id, commit_sha = excluded.commit_sha, pinned_at = excluded.pinned_at
            """, new { jobId, stepOrder, projectId, commit, now = Now() }, write.Transaction);
        await write.CommitAsync(ct);
        signals.EventsAppended(jobId);
        return true;
    }

    private sealed class Row
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string GitRepo { get; set; } = "";
        public string? Ref { get; set; }
        public string? Credential { get; set; }
        public DateTime CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";
        public string? LastCommit { get; set; }
        public DateTime? SyncedAt { get; set; }

        public ProjectInfo Info => new(Id, Name, GitRepo, Ref, Credential, CreatedAt.AsUtc(), CreatedBy, LastCommit, SyncedAt.AsUtc());
    }

    private sealed class PinRow
    {
        public string ProjectId { get; set; } = "";
        public string CommitSha { get; set; } = "";
    }
}
