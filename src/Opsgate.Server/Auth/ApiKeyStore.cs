using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Auth;

internal sealed class ApiKeyRow
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string Role { get; set; } = "";
    public string? Namespaces { get; set; }
    public string KeyPrefix { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public string CreatedBy { get; set; } = "";
    public DateTime? ExpiresAt { get; set; }
    public DateTime? RevokedAt { get; set; }

    public IReadOnlyList<string>? NamespaceList =>
        Namespaces is null ? null : JsonSerializer.Deserialize<List<string>>(Namespaces);
}

internal enum RevokeOutcome { Revoked, NotFound, AlreadyRevoked, LastAdmin }

/// <summary>
/// API keys are random 256-bit secrets shown once; only their SHA-256 is stored. A fast hash is
/// enough because the keys are random, not chosen by people, so there is nothing to brute-force.
/// </summary>
internal sealed class ApiKeyStore(Database database, TimeProvider time, IOptions<AuthOptions> options)
{
    public const string BootstrapId = "ak_bootstrap";
    private const string Columns = "id, name, role, namespaces, key_prefix, created_at, created_by, expires_at, revoked_at";
    private const int MaxCachedKeys = 10_000;
    /// <summary>How much of a key <c>key_prefix</c> keeps: <c>og_</c> and 7 random characters, enough to tell keys apart.</summary>
    public const int PrefixLength = 10;

    private readonly ConcurrentDictionary<string, (ApiKeyRow Row, long FetchedAt)> _cache = new(StringComparer.Ordinal);

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static string NewKey() => "og_" + Base64Url(RandomNumberGenerator.GetBytes(32));

    public async Task<(ApiKeyRow Row, string Key)> CreateAsync(
        string name, Role role, IReadOnlyList<string>? namespaces, DateTime? expiresAt, string createdBy, CancellationToken ct)
    {
        var key = NewKey();
        var row = new ApiKeyRow
        {
            Id = "ak_" + Base64Url(RandomNumberGenerator.GetBytes(9)).ToLowerInvariant().Replace('-', 'x').Replace('_', 'y'),
            Name = name,
            Role = role.Name(),
            Namespaces = namespaces is null ? null : JsonSerializer.Serialize(namespaces),
            KeyPrefix = key[..PrefixLength],
            CreatedAt = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds(),
            CreatedBy = createdBy,
            ExpiresAt = expiresAt?.ToUniversalTime().TruncateToMicroseconds(),
        };
        await using (var write = await database.WriteAsync(ct))
        {
            await write.Connection.ExecuteAsync(
                """
                INSERT INTO api_keys (id, name, role, namespaces, key_hash, key_prefix, created_at, created_by, expires_at)
                VALUES (@Id, @Name, @Role, @Namespaces, @KeyHash, @KeyPrefix, @CreatedAt, @CreatedBy, @ExpiresAt)
                """,
                new { row.Id, row.Name, row.Role, row.Namespaces, KeyHash = Hash(key), row.KeyPrefix, row.CreatedAt, row.CreatedBy, row.ExpiresAt }, write.Transaction);
            await write.CommitAsync(ct);
        }
        return (Normalize(row), key);
    }

    public async Task<IReadOnlyList<ApiKeyRow>> ListAsync(bool includeRevoked, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var sql = includeRevoked
            ? $"SELECT {Columns} FROM api_keys ORDER BY created_at, id"
            : $"SELECT {Columns} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id";
        return (await connection.QueryAsync<ApiKeyRow>(sql)).Select(Normalize).ToList();
    }

    public async Task<RevokeOutcome> RevokeAsync(string id, CancellationToken ct)
    {
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        var row = await connection.QuerySingleOrDefaultAsync<ApiKeyRow>($"SELECT {Columns} FROM api_keys WHERE id = @id", new { id }, tx);
        if (row is null)
            return RevokeOutcome.NotFound;
        if (row.RevokedAt is not null)
            return RevokeOutcome.AlreadyRevoked;
        var now = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        if (row.Role == Role.Admin.Name())
        {
            var otherAdmins = await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL AND id <> @id AND (expires_at IS NULL OR expires_at > @now)",
                new { id, now }, tx);
            if (otherAdmins == 0)
                return RevokeOutcome.LastAdmin;
        }
        await connection.ExecuteAsync("UPDATE api_keys SET revoked_at = @now WHERE id = @id", new { id, now }, tx);
        await tx.CommitAsync(ct);
        foreach (var (hash, entry) in _cache)
        {
            if (entry.Row.Id == id)
                _cache.TryRemove(hash, out _);
        }
        return RevokeOutcome.Revoked;
    }

    /// <summary>The key's record if it exists (revoked and expired ones included: the caller says why it is refused).</summary>
    public async Task<ApiKeyRow?> FindAsync(string key, CancellationToken ct)
    {
        var hash = Hash(key);
        var now = time.GetTimestamp();
        if (_cache.TryGetValue(hash, out var cached) && time.GetElapsedTime(cached.FetchedAt, now) < options.Value.KeyCacheTtl)
            return cached.Row;

        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<ApiKeyRow>($"SELECT {Columns} FROM api_keys WHERE key_hash = @hash", new { hash });
        if (row is null)
            return null;
        if (_cache.Count >= MaxCachedKeys)
            _cache.Clear();
        _cache[hash] = (Normalize(row), now);
        return row;
    }

    /// <summary>The key's record by id, uncached: a session made from the key checks on each request that it still holds.</summary>
    public async Task<ApiKeyRow?> FindByIdAsync(string id, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<ApiKeyRow>($"SELECT {Columns} FROM api_keys WHERE id = @id", new { id });
        return row is null ? null : Normalize(row);
    }

    public async Task<bool> AnyAsync(CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL") > 0;
    }

    /// <summary>Installs <paramref name="key"/> as the bootstrap admin key, replacing an earlier bootstrap key.</summary>
    public async Task InstallBootstrapAsync(string key, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        await using var write = await database.WriteAsync(ct);
        var (connection, tx) = (write.Connection, write.Transaction);
        await connection.ExecuteAsync("DELETE FROM api_keys WHERE id = @id", new { id = BootstrapId }, tx);
        await connection.ExecuteAsync(
            """
            INSERT INTO api_keys (id, name, role, namespaces, key_hash, key_prefix, created_at, created_by, expires_at)
            VALUES (@id, 'bootstrap-admin', 'admin', NULL, @hash, @prefix, @now, 'opsgate', NULL)
            """,
            new { id = BootstrapId, hash = Hash(key), prefix = key[..Math.Min(PrefixLength, key.Length)], now }, tx);
        await tx.CommitAsync(ct);
        _cache.Clear();
    }

    private static ApiKeyRow Normalize(ApiKeyRow row)
    {
        row.CreatedAt = row.CreatedAt.AsUtc();
        row.ExpiresAt = row.ExpiresAt.AsUtc();
        row.RevokedAt = row.RevokedAt.AsUtc();
        return row;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
