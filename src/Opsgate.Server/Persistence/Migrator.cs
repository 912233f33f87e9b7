using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Persistence;

/// <summary>
/// Applies the numbered SQL files under Persistence/Migrations/{dialect}/ in order, each in its own
/// transaction, and records each with the SHA-256 of its text. A migration that was changed after it
/// was applied stops start-up: the schema in the database would no longer be the one the code expects.
/// Several replicas may start at once: on PostgreSQL an advisory lock serializes them, on SQLite the
/// immediate write transaction does.
/// </summary>
internal sealed partial class Migrator(Database database, ILogger<Migrator> logger)
{
    private const long PostgresLockKey = 0x6f70_7367_6174_65; // "opsgate"

    public sealed record Migration(int Version, string Name, string Sql, string Checksum);

    private sealed record Applied(long Version, string Name, string Checksum);

    public IReadOnlyList<Migration> Embedded { get; } = LoadEmbedded(database.Dialect);

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        DbConnection connection;
        try
        {
            connection = await database.OpenAsync(cancellationToken);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or IOException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new StartupException($"cannot open the database ({database.Describe()}): {e.Message}", e);
        }
        await using (connection)
        {
            if (database.Dialect == DbDialect.Postgres)
                await connection.ExecuteAsync("SELECT pg_advisory_lock(@key)", new { key = PostgresLockKey });
            try
            {
                await connection.ExecuteAsync(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)");
                var applied = (await connection.QueryAsync<Applied>("SELECT version, name, checksum FROM schema_migrations ORDER BY version"))
                    .ToDictionary(a => a.Version);
                foreach (var a in applied.Values)
                {
                    var known = Embedded.FirstOrDefault(m => m.Version == a.Version)
                        ?? throw new StartupException($"the database has migration {a.Version} ({a.Name}) that this Opsgate does not know: it was migrated by a newer version");
                    if (known.Checksum != a.Checksum)
                        throw new StartupException($"migration {known.Name} was changed after it was applied (checksum {a.Checksum[..12]}… in the database, {known.Checksum[..12]}… now); add a new migration instead of editing an applied one");
                }
                foreach (var migration in Embedded.Where(m => !applied.ContainsKey(m.Version)))
                {
                    await using var tx = Database.BeginWrite(connection);
                    await connection.ExecuteAsync(migration.Sql, transaction: tx);
                    await connection.ExecuteAsync(
                        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (@Version, @Name, @Checksum, @AppliedAt)",
                        new { migration.Version, migration.Name, migration.Checksum, AppliedAt = DateTime.UtcNow.ToString("O") }, tx);
                    await tx.CommitAsync(cancellationToken);
                    LogApplied(logger, migration.Name, database.Dialect);
                }
            }
            finally
            {
                if (database.Dialect == DbDialect.Postgres)
                    await connection.ExecuteAsync("SELECT pg_advisory_unlock(@key)", new { key = PostgresLockKey });
            }
        }
    }

    /// <summary>True when every embedded migration is recorded as applied (readiness).</summary>
    public async Task<bool> IsUpToDateAsync(DbConnection connection)
    {
        var versions = (await connection.QueryAsync<long>("SELECT version FROM schema_migrations")).ToHashSet();
        return Embedded.All(m => versions.Contains(m.Version));
    }

    private static List<Migration> LoadEmbedded(DbDialect dialect)
    {
        var assembly = typeof(Migrator).Assembly;
        var prefix = $"migrations/{dialect.ToString().ToLowerInvariant()}/";
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = resource[prefix.Length..];
            var version = int.Parse(name.AsSpan(0, name.IndexOf('_', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var sql = reader.ReadToEnd().ReplaceLineEndings("\n");
            var checksum = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql)));
            migrations.Add(new Migration(version, name, sql, checksum));
        }
        if (migrations.Count == 0)
            throw new InvalidOperationException($"no migrations are embedded for {dialect}: the build is broken");
        return migrations;
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Applied migration {Name} ({Dialect})")]
    private static partial void LogApplied(ILogger logger, string name, DbDialect dialect);
}
