using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Persistence;

/// <summary>Migrations as the real binary applies them at start-up.</summary>
public sealed class MigratorTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task An_applied_migration_that_was_edited_stops_the_next_start_with_a_line_naming_it(Provider provider)
    {
        using var dir = new TempDir();
        await using var postgres = provider == Provider.Postgres ? await PostgresDatabase.CreateAsync() : null;
        var environment = postgres is null
            ? new Dictionary<string, string>()
            : new Dictionary<string, string> { ["OPSGATE_DATABASE__PROVIDER"] = "postgres", ["OPSGATE_DATABASE__CONNECTIONSTRING"] = postgres.ConnectionString };
        await using (var first = await OpsgateProcess.StartReadyAsync(dir.Path, environment: environment))
        {
            Assert.Contains("Applied migration 0001_initial.sql", first.Output, StringComparison.Ordinal);
        }

        // What an edited 0001_initial.sql looks like from the database's side: the recorded checksum no longer matches.
        await using (var connection = await OpenAsync(postgres, dir.Path))
            Assert.Equal(1, await connection.ExecuteAsync("UPDATE schema_migrations SET checksum = @checksum WHERE version = 1", new { checksum = new string('0', 64) }));

        await using var second = OpsgateProcess.Start(dir.Path, environment: environment);
        Assert.NotEqual(0, await second.WaitForExitAsync());
        var line = Assert.Single(second.StderrLines);
        Assert.StartsWith("opsgate: migration 0001_initial.sql was changed after it was applied", line, StringComparison.Ordinal);
        second.AssertNoStackTrace();
    }

    private static async Task<DbConnection> OpenAsync(PostgresDatabase? postgres, string workingDirectory)
    {
        DbConnection connection = postgres is null
            ? new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(workingDirectory, "data", "opsgate.db"), Pooling = false }.ToString())
            : new NpgsqlConnection(postgres.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}
