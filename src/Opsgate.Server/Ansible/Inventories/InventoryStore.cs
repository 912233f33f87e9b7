using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Engine;
using Opsgate.Server.Persistence;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>One version of a stored inventory, without its (possibly large) texts.</summary>
/// <param name="Source">Where a version sourced from a project came from; null for YAML that was sent.</param>
internal sealed record InventoryVersion(long Id, string Name, long Seq, string Version, string? Env, long HostCount, DateTime CreatedAt, string CreatedBy, InventorySourceInfo? Source = null);

/// <summary>The project, path and commit a sourced version was read from (<see cref="InventorySources"/>).</summary>
internal sealed record InventorySourceInfo(string ProjectId, string Project, string Path, string Commit);

/// <summary>A version as it was sent: <c>hosts</c> and <c>vars</c> YAML text, secret values shown as [REDACTED].</summary>
internal sealed record InventorySource(InventoryVersion Version, string Hosts, string? Vars);

/// <summary>
/// What a run needs: the YAML ansible reads and ansible-inventory's expansion of it, made when the version was stored.
/// Both hold [REDACTED] for secret values: <paramref name="SecretName"/> names the secret holding them (null: none),
/// which <see cref="InventoryStore.SecretValuesAsync"/> reads and <see cref="InventorySecrets"/> puts back.
/// </summary>
internal sealed record ResolvedInventory(InventoryVersion Version, string Yaml, ExpandedInventory Expanded, string? SecretName);

/// <summary>What the user asked to store; <c>Hosts</c> and <c>Vars</c> are YAML text.</summary>
internal sealed record NewInventory(string Name, string? Env, string? Version, string Hosts, string? Vars);

/// <summary>A version read from a project: the YAML generated from ansible's expansion, the expansion, and where it came from.</summary>
internal sealed record SourcedInventory(string Yaml, ExpandedInventory Expanded, InventorySourceInfo Source);

internal sealed class InventoryConflictException(string message) : Exception(message);

/// <summary>
/// A stored inventory is named by its id (digits) or its name (a DNS label with at least one letter, so the two
/// never collide). Versions are kept: 1, 2, 3... or labels the user gives.
/// </summary>
internal readonly record struct InventoryRef(long? Id, string? Name)
{
    public static bool TryParse(string? text, out InventoryRef reference)
    {
        reference = default;
        if (string.IsNullOrEmpty(text))
            return false;
        if (text.All(char.IsAsciiDigit))
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                return false;
            reference = new InventoryRef(id, null);
            return true;
        }
        if (!InventoryNames.IsValidName(text))
            return false;
        reference = new InventoryRef(null, text);
        return true;
    }

    public override string ToString() => Id?.ToString(CultureInfo.InvariantCulture) ?? Name!;
}

internal static class InventoryNames
{
    public const string NameRule = Hosting.Validate.DnsLabelRule + ", with at least one letter (all digits is an id)";
    public const string VersionRule = "must be 1-63 characters: letters, digits, '.', '_', '+' or '-', starting with a letter or digit";
    public const string ReferenceRule = "must be an inventory id (digits) or name";

    public static bool IsValidName(string? name) => Hosting.Validate.IsDnsLabel(name) && name!.Any(char.IsAsciiLetter);

    public static bool IsValidVersion(string? version) =>
        version is { Length: > 0 and <= 63 } && char.IsAsciiLetterOrDigit(version[0]) && version.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '+' or '-');
}

/// <summary>
/// Stored inventories: each version is checked and expanded by ansible once, when it is created, and kept with its
/// expansion, so a run (or a shard) gets the YAML and the expanded hosts from <see cref="ResolveAsync"/> without
/// running ansible-inventory again (3 s for 20,000 hosts).
/// </summary>
internal sealed class InventoryStore(Database database, InventoryExpander expander, InventorySecrets secrets, ISecretStore secretStore, TimeProvider time, ISqlText dialect)
{
    private const string Columns =
        "i.id, i.name, v.seq, v.version, v.env, v.host_count, v.created_at, v.created_by, v.source_project_id, v.source_project, v.source_path, v.source_commit";

    /// <summary>
    /// Checks (YAML, then ansible-inventory), expands and stores a new version of <see cref="NewInventory.Name"/>.
    /// Throws <see cref="InventoryYamlException"/> or <see cref="InventoryException"/> for an inventory ansible cannot
    /// use, <see cref="InventoryConflictException"/> for a version label that exists.
    /// </summary>
    public async Task<InventoryVersion> CreateAsync(NewInventory request, string actor, CancellationToken ct)
    {
        var yaml = InventoryYaml.Merge(request.Hosts, request.Vars);
        // Seconds for a large inventory: done before the write turn is taken. ansible checks the real values.
        ExpandedInventory expanded;
        try
        {
            expanded = await expander.ExpandAsync(yaml, ct);
        }
        catch (InventoryException e) when (!e.ServerSide && InventoryYaml.MalformedHostRange(request.Hosts) is { } range)
        {
            throw new InventoryYamlException("hosts", range);
        }
        var texts = secrets.Seal(request.Hosts, request.Vars, yaml, expanded.List.ToJsonString(), refusePlaceholders: true);
        return (await InsertAsync(request, texts, expanded, null, onlyIfChanged: false, actor, ct)).Version;
    }

    /// <summary>
    /// Stores a version read from a project (<see cref="InventorySources"/>). With <paramref name="onlyIfChanged"/> (a
    /// sync), nothing is stored when ansible's expansion equals the latest version's: that version comes back, with
    /// Created false. Throws <see cref="InventoryConflictException"/> for a version label that exists.
    /// </summary>
    public Task<(InventoryVersion Version, bool Created)> CreateAsync(
        string name, string? env, string? version, SourcedInventory sourced, bool onlyIfChanged, string actor, CancellationToken ct) =>
        InsertAsync(new NewInventory(name, env, version, sourced.Yaml, null),
            secrets.Seal(sourced.Yaml, null, sourced.Yaml, sourced.Expanded.List.ToJsonString(), refusePlaceholders: false),
            sourced.Expanded, sourced.Source, onlyIfChanged, actor, ct);

    /// <remarks>
    /// The secret values go into the secret store before the row that refers to them is written, so a crash between
    /// the two leaves at worst an unused secret, never a version whose values are lost. A version that is not stored
    /// after all (a conflict, an unchanged sync) deletes its secret again.
    /// </remarks>
    private async Task<(InventoryVersion Version, bool Created)> InsertAsync(
        NewInventory request, SealedTexts texts, ExpandedInventory expanded, InventorySourceInfo? source, bool onlyIfChanged, string actor, CancellationToken ct)
    {
        var secretName = texts.Values is null ? null : InventorySecrets.NewSecretName();
        if (secretName is not null)
            await secretStore.PutAsync(secretName, JsonSerializer.SerializeToUtf8Bytes(texts.Values), ct);
        var stored = false;
        try
        {
            var result = await InsertRowAsync(request, texts, secretName, expanded, source, onlyIfChanged, actor, ct);
            stored = result.Created;
            return result;
        }
        finally
        {
            if (!stored && secretName is not null)
                await secretStore.DeleteAsync(secretName, CancellationToken.None);
        }
    }

    private async Task<(InventoryVersion Version, bool Created)> InsertRowAsync(
        NewInventory request, SealedTexts texts, string? secretName, ExpandedInventory expanded, InventorySourceInfo? source, bool onlyIfChanged, string actor, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        await connection.ExecuteAsync(
            "INSERT INTO inventories (name, created_at, created_by) VALUES (@name, @now, @actor) ON CONFLICT (name) DO NOTHING",
            new { name = request.Name, now, actor }, tx);
        // On PostgreSQL the row lock makes concurrent versions of one inventory take turns (SQLite writers already do).
        var id = await connection.ExecuteScalarAsync<long?>(
            "SELECT id FROM inventories WHERE name = @name" + dialect.ForUpdate,
            new { name = request.Name }, tx)
            // PostgreSQL: a delete of the inventory committed between the insert above (which found the row) and this lock.
            ?? throw new InventoryConflictException($"inventory '{request.Name}' was deleted meanwhile; send the version again");
        if (onlyIfChanged)
        {
            // Compared under the lock: two syncs at once store one version, not two equal ones.
            var latest = await connection.QueryFirstOrDefaultAsync<Row>(
                $"SELECT {Columns}, v.expanded, v.secret_name FROM inventories i JOIN inventory_versions v ON v.inventory_id = i.id WHERE i.id = @id ORDER BY v.seq DESC LIMIT 1",
                new { id }, tx);
            // A changed secret value (a rotated password) is a change too: the stored expansions hold only placeholders.
            if (latest is not null && latest.Expanded == texts.Expanded
                && JsonNode.DeepEquals(await SecretValuesOrNullAsync(latest.SecretName, ct) is { } values ? values["expanded"] : null, texts.Values?["expanded"]))
                return (latest.ToVersion(), false);
        }
        var seq = 1 + await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(seq), 0) FROM inventory_versions WHERE inventory_id = @id", new { id }, tx);
        var version = request.Version ?? seq.ToString(CultureInfo.InvariantCulture);
        if (await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM inventory_versions WHERE inventory_id = @id AND version = @version", new { id, version }, tx) > 0)
        {
            throw new InventoryConflictException(request.Version is null
                ? $"inventory '{request.Name}' already has a version labelled '{version}'; give a version label"
                : $"inventory '{request.Name}' already has version '{version}'");
        }
        await connection.ExecuteAsync(
            """
            INSERT INTO inventory_versions (inventory_id, seq, version, env, hosts, vars, inventory, expanded, host_count, created_at, created_by,
                                            source_project_id, source_project, source_path, source_commit, secret_name, secrets_sealed)
            VALUES (@id, @seq, @version, @env, @hosts, @vars, @yaml, @expanded, @count, @now, @actor, @projectId, @project, @path, @commit, @secretName, 1)
            """,
            new
            {
                id, seq, version, env = request.Env, hosts = texts.Hosts, vars = texts.Vars, yaml = texts.Inventory,
                expanded = texts.Expanded, count = expanded.Hosts.Count, now, actor, secretName,
                projectId = source?.ProjectId, project = source?.Project, path = source?.Path, commit = source?.Commit,
            }, tx);
        await write.CommitAsync(ct);
        return (new InventoryVersion(id, request.Name, seq, version, request.Env, expanded.Hosts.Count, now, actor, source), true);
    }

    /// <summary>The latest version of every inventory, by name.</summary>
    public async Task<IReadOnlyList<InventoryVersion>> ListAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = await connection.QueryAsync<Row>(new CommandDefinition(
            $"""
            SELECT {Columns} FROM inventories i JOIN inventory_versions v ON v.inventory_id = i.id
            WHERE v.seq = (SELECT MAX(seq) FROM inventory_versions WHERE inventory_id = i.id)
            ORDER BY i.name
            """, cancellationToken: ct));
        return rows.Select(r => r.ToVersion()).ToList();
    }

    /// <summary>Every version of the inventory, oldest first; null when there is no such inventory.</summary>
    public async Task<IReadOnlyList<InventoryVersion>?> VersionsAsync(InventoryRef reference, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM inventories i JOIN inventory_versions v ON v.inventory_id = i.id WHERE {Where(reference)} ORDER BY v.seq",
            new { id = reference.Id, name = reference.Name }, cancellationToken: ct))).ToList();
        return rows.Count == 0 ? null : rows.Select(r => r.ToVersion()).ToList();
    }

    /// <summary>
    /// The version <paramref name="version"/> (a label), or else the latest one created at or before <paramref name="asOf"/>
    /// (a job uses the version that was latest when it was submitted), or else the latest. Null when there is none.
    /// </summary>
    public async Task<InventoryVersion?> FindAsync(InventoryRef reference, string? version, CancellationToken ct, DateTime? asOf = null) =>
        (await FindRowAsync(reference, version, asOf, withTexts: false, ct))?.ToVersion();

    /// <summary>The version's texts as they were sent, secret values shown as [REDACTED].</summary>
    public async Task<InventorySource?> SourceAsync(InventoryRef reference, string? version, CancellationToken ct)
    {
        if (await FindRowAsync(reference, version, null, withTexts: true, ct) is not { } row)
            return null;
        // A version written by an older replica after this one sealed the others at start-up: redacted here too.
        var (hosts, vars) = row.SecretsSealed != 0 ? (row.Hosts!, row.Vars) : Redact(row);
        return new InventorySource(row.ToVersion(), hosts, vars);
    }

    private (string Hosts, string? Vars) Redact(Row row)
    {
        var texts = secrets.Seal(row.Hosts!, row.Vars, row.Inventory!, row.Expanded!, refusePlaceholders: false);
        return (texts.Hosts, texts.Vars);
    }

    /// <summary>
    /// What a run of the inventory needs (see <see cref="FindAsync"/> for which version): the YAML for ansible and the
    /// expansion made when the version was stored. Null when the inventory or the version does not exist.
    /// </summary>
    public async Task<ResolvedInventory?> ResolveAsync(InventoryRef reference, string? version, CancellationToken ct, DateTime? asOf = null)
    {
        if (await FindRowAsync(reference, version, asOf, withTexts: true, ct) is not { } row)
            return null;
        var list = JsonNode.Parse(row.Expanded!)!.AsObject();
        return new ResolvedInventory(row.ToVersion(), row.Inventory!, new ExpandedInventory(InventoryExpander.HostsOf(list), list), row.SecretName);
    }

    /// <summary>
    /// The secret values of a version (<see cref="ResolvedInventory.SecretName"/>), for the run only. Throws
    /// <see cref="InventorySecretsException"/> when the secret store does not have them.
    /// </summary>
    public async Task<JsonObject> SecretValuesAsync(string secretName, CancellationToken ct) =>
        await SecretValuesOrNullAsync(secretName, ct)
        ?? throw new InventorySecretsException($"the secret values of the inventory ({secretName}) are missing from the secret store; " +
            "store the inventory again (was the secret store restored apart from the database?)");

    private async Task<JsonObject?> SecretValuesOrNullAsync(string? secretName, CancellationToken ct) =>
        secretName is not null && await secretStore.GetAsync(secretName, ct) is { } bytes ? JsonNode.Parse(bytes)!.AsObject() : null;

    /// <summary>
    /// Deletes the inventory with all its versions; false when there is none. Refused while a job that is waiting or
    /// running names it in its <c>inventory</c> parameter (the built-in ansible-playbook runbook's).
    /// </summary>
    public async Task<bool> DeleteAsync(InventoryRef reference, CancellationToken ct)
    {
        if (await DeleteRowsAsync(reference, ct) is not { } secretNames)
            return false;
        // After the rows, each in the store's own write turn: a failure here leaves unused ciphertext, never a
        // version whose values are gone.
        foreach (var name in secretNames)
            await secretStore.DeleteAsync(name, CancellationToken.None);
        return true;
    }

    /// <summary>Deletes the rows; the names of the versions' secrets, or null when there is no such inventory.</summary>
    private async Task<List<string>?> DeleteRowsAsync(InventoryRef reference, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        var inventory = await write.Connection.QueryFirstOrDefaultAsync<Row>(
            $"SELECT i.id, i.name FROM inventories i WHERE {Where(reference)}", new { id = reference.Id, name = reference.Name }, write.Transaction);
        if (inventory is null)
            return null;
        if (await UnfinishedJobs.UsingAsync(write, dialect, "inventory", inventory.Id.ToString(CultureInfo.InvariantCulture), inventory.Name) is { } job)
            throw new InventoryConflictException($"inventory '{inventory.Name}' is used by job {job}, which has not finished; delete it after the job ends (or cancel the job)");
        var secretNames = (await write.Connection.QueryAsync<string>(
            "SELECT secret_name FROM inventory_versions WHERE inventory_id = @id AND secret_name IS NOT NULL", new { id = inventory.Id }, write.Transaction)).ToList();
        await write.Connection.ExecuteAsync("DELETE FROM inventory_versions WHERE inventory_id = @id", new { id = inventory.Id }, write.Transaction);
        await write.Connection.ExecuteAsync("DELETE FROM inventories WHERE id = @id", new { id = inventory.Id }, write.Transaction);
        await write.CommitAsync(ct);
        return secretNames;
    }

    private async Task<Row?> FindRowAsync(InventoryRef reference, string? version, DateTime? asOf, bool withTexts, CancellationToken ct)
    {
        var columns = withTexts ? Columns + ", v.hosts, v.vars, v.inventory, v.expanded, v.secret_name, v.secrets_sealed" : Columns;
        var filter = (version is null ? "" : " AND v.version = @version") + (asOf is null || version is not null ? "" : " AND v.created_at <= @asOf");
        await using var connection = await database.OpenAsync(ct);
        return await connection.QueryFirstOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {columns} FROM inventories i JOIN inventory_versions v ON v.inventory_id = i.id WHERE {Where(reference)}{filter} ORDER BY v.seq DESC LIMIT 1",
            new { id = reference.Id, name = reference.Name, version, asOf }, cancellationToken: ct));
    }

    private static string Where(InventoryRef reference) => reference.Id is null ? "i.name = @name" : "i.id = @id";

    private sealed class Row
    {
        public long Id { get; set; }
        public string Name { get; set; } = "";
        public long Seq { get; set; }
        public string Version { get; set; } = "";
        public string? Env { get; set; }
        public long HostCount { get; set; }
        public DateTime CreatedAt { get; set; }
        public string CreatedBy { get; set; } = "";
        public string? Hosts { get; set; }
        public string? Vars { get; set; }
        public string? Inventory { get; set; }
        public string? Expanded { get; set; }
        public string? SecretName { get; set; }
        public long SecretsSealed { get; set; }
        public string? SourceProjectId { get; set; }
        public string? SourceProject { get; set; }
        public string? SourcePath { get; set; }
        public string? SourceCommit { get; set; }

        public InventoryVersion ToVersion() => new(Id, Name, Seq, Version, Env, HostCount, CreatedAt.AsUtc(), CreatedBy,
            SourceProjectId is null ? null : new InventorySourceInfo(SourceProjectId, SourceProject!, SourcePath!, SourceCommit!));
    }
}
