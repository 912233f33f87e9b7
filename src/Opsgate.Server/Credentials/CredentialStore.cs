using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Dapper;
using Opsgate.Server.Access;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Credentials;

/// <summary>What a credential is for: an SSH private key (git over ssh, or the machines of a playbook run), or a token or password (git over https).</summary>
internal static class CredentialKinds
{
    public const string SshKey = "ssh_key", Token = "token", Password = "password";

    public static readonly IReadOnlyList<string> All = [SshKey, Token, Password];
}

/// <summary>A stored credential as anyone may see it: never the secret.</summary>
internal sealed record CredentialInfo(string Name, string Kind, string? Username, CredentialUse Use, DateTime CreatedAt, string CreatedBy);

/// <summary>A credential with its secret, for the code that uses it (git, ansible) and nothing else.</summary>
internal sealed record CredentialSecret(CredentialInfo Info, string Secret);

internal sealed class CredentialConflictException(string message) : Exception(message);

/// <summary>A credential's row exists but the secret store has no secret for it (the store was restored or edited apart from the database).</summary>
internal sealed class CredentialSecretMissingException(string credential)
    : InvalidOperationException($"the secret of credential '{credential}' is missing from the secret store; delete the credential and create it again")
{
    public string Credential { get; } = credential;
}

/// <summary>
/// AWX's credential model, small: a name, a kind, an optional username, and a secret kept in the secret store
/// (<c>credential/&lt;name&gt;/secret</c>) that never comes back out through the API.
/// </summary>
internal sealed class CredentialStore(Database database, ISecretStore secrets, TimeProvider time, ISqlText dialect)
{
    /// <summary>Names whose row is committed but whose secret is not stored yet: not there for anyone else.</summary>
    private readonly ConcurrentDictionary<string, byte> _creating = new(StringComparer.Ordinal);

    private const string Columns = "name, kind, username, use_min_role, use_keys, use_groups, created_at, created_by";

    public static string SecretName(string credential) => $"credential/{credential}/secret";

    public async Task<IReadOnlyList<CredentialInfo>> ListAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return (await connection.QueryAsync<Row>($"SELECT {Columns} FROM credentials ORDER BY name"))
            .Where(r => !_creating.ContainsKey(r.Name)).Select(r => r.Info).ToList();
    }

    /// <summary>
    /// Why <paramref name="principal"/> may not make the server fetch project <paramref name="project"/> with its
    /// <paramref name="credential"/> (a fetch sends the credential to the project's git host), or null when it may.
    /// </summary>
    public async Task<string?> FetchRefusalAsync(string project, string? credential, Access.Principal principal, CancellationToken ct) =>
        credential is { } name && await FindAsync(name, ct) is { } info ? info.Use.Refusal(name, principal, project) : null;

    public async Task<CredentialInfo?> FindAsync(string name, CancellationToken ct)
    {
        if (_creating.ContainsKey(name))
            return null;
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} FROM credentials WHERE name = @name", new { name });
        return row?.Info;
    }

    public async Task<CredentialSecret?> GetSecretAsync(string name, CancellationToken ct)
    {
        if (await FindAsync(name, ct) is not { } info)
            return null;
        var secret = await secrets.GetAsync(SecretName(name), ct)
            ?? throw new CredentialSecretMissingException(name);
        return new CredentialSecret(info, Encoding.UTF8.GetString(secret));
    }

    public async Task<CredentialInfo> CreateAsync(string name, string kind, string? username, CredentialUse use, string secret, string actor, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        // The row first: a name taken a moment ago by someone else must not get its secret overwritten (ON CONFLICT
        // waits for a concurrent insert on PostgreSQL; SQLite writers take turns). Until its secret is stored the
        // credential is hidden from this server (the secret store writes in a scope of its own: scopes do not nest).
        var mine = _creating.TryAdd(name, 0); // not mine: a create of this name is under way here, and this one will conflict
        try
        {
            await using (var write = await database.WriteAsync(ct))
            {
                var inserted = await write.Connection.ExecuteAsync(
                    """
                    INSERT INTO credentials (name, kind, username, use_min_role, use_keys, use_groups, created_at, created_by)
                    VALUES (@name, @kind, @username, @minRole, @keys, @groups, @now, @actor)
                    ON CONFLICT (name) DO NOTHING
                    """, new
                    {
                        name, kind, username, minRole = use.MinRole.Name(), keys = JsonSerializer.Serialize(use.Keys), groups = JsonSerializer.Serialize(use.Groups), now, actor,
                    }, write.Transaction);
                if (inserted == 0)
                    throw new CredentialConflictException($"credential '{name}' already exists");
                await write.CommitAsync(ct);
            }
            try
            {
                await secrets.PutAsync(SecretName(name), Encoding.UTF8.GetBytes(secret), ct);
            }
            catch
            {
                await using var undo = await database.WriteAsync(CancellationToken.None);
                await undo.Connection.ExecuteAsync("DELETE FROM credentials WHERE name = @name", new { name }, undo.Transaction);
                await undo.CommitAsync(CancellationToken.None);
                throw;
            }
        }
        finally
        {
            if (mine)
                _creating.TryRemove(name, out _);
        }
        return new CredentialInfo(name, kind, username, use, now, actor);
    }

    /// <summary>
    /// False when there is no such credential. Refused while a project uses it (the project would stop working) or a job that
    /// has not finished names it.
    /// </summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken ct)
    {
        int removed;
        await using (var write = await database.WriteAsync(ct))
        {
            var users = (await write.Connection.QueryAsync<string>("SELECT name FROM projects WHERE credential = @name ORDER BY name", new { name }, write.Transaction)).AsList();
            if (users.Count > 0)
                throw new CredentialConflictException($"credential '{name}' is used by project(s) {string.Join(", ", users)}; delete them or give them another credential first");
            if (await UnfinishedJobs.UsingAsync(write, dialect, "credential", name) is { } job)
                throw new CredentialConflictException($"credential '{name}' is used by job {job}, which has not finished; delete it after the job ends (or cancel the job)");
            try
            {
                removed = await write.Connection.ExecuteAsync("DELETE FROM credentials WHERE name = @name", new { name }, write.Transaction);
                await write.CommitAsync(ct);
            }
            catch (Exception e) when (Database.IsForeignKeyViolation(e))
            {
                // A project naming it was added meanwhile (PostgreSQL: its insert committed after the check above).
                throw new CredentialConflictException($"credential '{name}' was just given to a project; delete that project or give it another credential first");
            }
        }
        await secrets.DeleteAsync(SecretName(name), ct);
        return removed > 0;
    }

    private sealed class Row
    {
        public string Name { get; set; } = "";
        public string Kind { get; set; } = "";
        public string? Username { get; set; }
        public string UseMinRole { get; set; } = "";
        public string UseKeys { get; set; } = "[]";
        public string UseGroups { get; set; } = "[]";
        public DateTime CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";

        // An unreadable rule (edited behind Opsgate's back) falls to admins only rather than to everyone.
        public CredentialInfo Info => new(Name, Kind, Username,
            new CredentialUse(Roles.ParseOrNull(UseMinRole) ?? Role.Admin, JsonSerializer.Deserialize<List<string>>(UseKeys) ?? [], JsonSerializer.Deserialize<List<string>>(UseGroups) ?? []),
            CreatedAt.AsUtc(), CreatedBy);
    }
}
