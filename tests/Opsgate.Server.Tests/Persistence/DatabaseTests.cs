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

        var first = await database.WaitToWriteAsync();
        var second = database.WaitToWriteAsync().AsTask();
        Assert.False(second.IsCompleted);

        first.Dispose();
        using var turn = await second.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Postgres_writers_never_wait_for_a_turn()
    {
        // No connection is opened: the data source only parses the string.
        var options = new DatabaseOptions { Provider = "postgres", ConnectionString = "Host=127.0.0.1;Port=1;Username=postgres;Database=postgres" };
        await using var database = new Database(Options.Create(options), Options.Create(new OpsgateOptions()));

        using var first = await database.WaitToWriteAsync();
        var second = database.WaitToWriteAsync();
        Assert.True(second.IsCompleted);
        using var turn = await second;
    }
}
