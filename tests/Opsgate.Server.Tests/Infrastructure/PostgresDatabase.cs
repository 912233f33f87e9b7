using Npgsql;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>
/// A fresh database on the PostgreSQL server that scripts/test.sh starts on 127.0.0.1 (its connection string
/// is in OPSGATE_TEST_POSTGRES); dropped again on dispose.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    public const string EnvironmentVariable = "OPSGATE_TEST_POSTGRES";

    private readonly string _server;

    private PostgresDatabase(string server, string name)
    {
        _server = server;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ToString();
    }

    public string Name { get; }
    public string ConnectionString { get; }

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException(
                $"PostgreSQL tests need {EnvironmentVariable} (e.g. Host=127.0.0.1;Port=25432;Username=postgres;Database=postgres). " +
                "Run scripts/test.sh, which starts a PostgreSQL server for the tests.");

    public static async Task<PostgresDatabase> CreateAsync()
    {
        var server = ServerConnectionString;
        var name = "opsgate_test_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(server);
        await connection.OpenAsync();
        // A database name cannot be a parameter; this one is generated above from hex digits only.
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync();
        return new PostgresDatabase(server, name);
    }

    public async Task DropAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_server);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync() => await DropAsync();
}
