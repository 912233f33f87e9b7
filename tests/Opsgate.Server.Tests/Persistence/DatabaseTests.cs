using Dapper;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Persistence;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Persistence;

public sealed class DatabaseTests
{
    [Fact]
    public async Task Sqlite_writers_take_turns_instead_of_meeting_the_lock()
    {
        using var dir = new TempDir();
        await using var database = new Database(Options.Create(new DatabaseOptions()), Options.Create(new OpsgateOptions { DataDir = dir.Path }));
        await using (var setup = await database.WriteAsync())
        {
            await setup.Connection.ExecuteAsync("CREATE TABLE t (v INTEGER)", transaction: setup.Transaction);
            await setup.CommitAsync();
        }

        var first = await database.WriteAsync();
        await first.Connection.ExecuteAsync("INSERT INTO t VALUES (1)", transaction: first.Transaction);
        var second = database.WriteAsync();
        Assert.False(second.IsCompleted);

        await first.CommitAsync();
        await first.DisposeAsync();
        await using (var turn = await second.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            await turn.Connection.ExecuteAsync("INSERT INTO t VALUES (2)", transaction: turn.Transaction);
            // not committed: disposing rolls it back
        }

        await using var read = await database.OpenAsync();
        Assert.Equal([1L], await read.QueryAsync<long>("SELECT v FROM t"));
    }

    [Fact]
    public async Task Postgres_writers_never_wait_for_a_turn()
    {
        await using var postgres = await PostgresDatabase.CreateAsync();
        var options = new DatabaseOptions { Provider = "postgres", ConnectionString = postgres.ConnectionString };
        await using var database = new Database(Options.Create(options), Options.Create(new OpsgateOptions()));

        await using var first = await database.WriteAsync();
        var second = database.WriteAsync();
        await using var turn = await second.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotSame(first.Connection, turn.Connection);
    }
}
