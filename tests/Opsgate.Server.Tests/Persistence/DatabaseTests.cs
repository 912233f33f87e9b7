using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Persistence;
using Opsgate.Server.Persistence.Sqlite;
using Opsgate.Server.Tests.Infrastructure;
using SQLitePCL;

namespace Opsgate.Server.Tests.Persistence;

public sealed class DatabaseTests
{
    /// <summary>A SQLite database in <paramref name="dir"/> with one table made by <paramref name="createTable"/>.</summary>
    private static async Task<Database> SqliteAsync(TempDir dir, string createTable)
    {
        var database = new Database(Options.Create(new DatabaseOptions()), Options.Create(new OpsgateOptions { DataDir = dir.Path }));
        await using var setup = await database.WriteAsync();
        await setup.Connection.ExecuteAsync(createTable, transaction: setup.Transaction);
        await setup.CommitAsync();
        return database;
    }

    [Fact]
    public async Task Sqlite_writers_take_turns_instead_of_meeting_the_lock()
    {
        using var dir = new TempDir();
        await using var database = await SqliteAsync(dir, "CREATE TABLE t (v INTEGER)");

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
    public async Task Sqlite_writes_reuse_prepared_statements_with_fresh_parameters_and_survive_a_failed_statement()
    {
        using var dir = new TempDir();
        await using var database = await SqliteAsync(dir, "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, note TEXT NULL)");
        const string Insert = "INSERT INTO t (k, v, note) VALUES (@k, @v, @note) RETURNING v";
        for (var i = 0; i < 3; i++)
        {
            await using var write = await database.WriteAsync();
            // Same text each time: the statement prepared first runs again, with this call's values only.
            Assert.Equal(i, await write.Connection.QuerySingleAsync<long>(Insert, new { k = $"k{i}", v = i, note = i == 1 ? "one" : null }, write.Transaction));
            // Several parameter sets on one command (Dapper's multi-exec).
            await write.Connection.ExecuteAsync("INSERT INTO t (k, v) VALUES (@k, @v)", new[] { new { k = $"a{i}", v = 10 + i }, new { k = $"b{i}", v = 20 + i } }, write.Transaction);
            await write.CommitAsync();
        }
        await using (var write = await database.WriteAsync())
        {
            await Assert.ThrowsAsync<SqliteException>(() => write.Connection.QuerySingleAsync<long>(Insert, new { k = "k0", v = 99, note = "dup" }, write.Transaction));
            await write.Connection.ExecuteAsync("INSERT INTO t (k, v) VALUES (@k, @v)", new { k = "rolled-back", v = 1 }, write.Transaction);
            // not committed: the whole transaction goes
        }
        await using (var write = await database.WriteAsync())
        {
            Assert.Equal(7, await write.Connection.QuerySingleAsync<long>(Insert, new { k = "k7", v = 7, note = (string?)null }, write.Transaction));
            // Dapper rewrites the text of a list parameter after adding its values.
            Assert.Equal(2, await write.Connection.ExecuteAsync("UPDATE t SET v = v + 100 WHERE k IN @keys", new { keys = new[] { "a0", "b0" } }, write.Transaction));
            await write.CommitAsync();
        }

        await using var read = await database.OpenAsync();
        Assert.Equal(["a0:110:", "a1:11:", "a2:12:", "b0:120:", "b1:21:", "b2:22:", "k0:0:", "k1:1:one", "k2:2:", "k7:7:"],
            await read.QueryAsync<string>("SELECT k || ':' || v || ':' || COALESCE(note, '') FROM t ORDER BY k"));
    }

    [Fact]
    public async Task Statements_the_sqlite_writer_keeps_natively_are_reused_and_finalized_when_it_closes()
    {
        using var dir = new TempDir();
        var connectionString = new SqliteConnectionStringBuilder { DataSource = Path.Combine(dir.Path, "t.db"), Pooling = true }.ToString();
        await using var writer = new SqliteWriterConnection(connectionString);
        await writer.OpenAsync();
        var statement = writer.NativeStatement("SELECT 40 + 2");
        Assert.Same(statement, writer.NativeStatement("SELECT 40 + 2"));
        Assert.Equal(raw.SQLITE_ROW, raw.sqlite3_step(statement));
        Assert.Equal(42, raw.sqlite3_column_int(statement, 0));
        raw.sqlite3_reset(statement);

        // Closing hands the handle back to the pool: the statement is finalized first, and a reopened writer prepares anew.
        await writer.CloseAsync();
        Assert.True(statement.IsClosed);
        await writer.OpenAsync();
        var again = writer.NativeStatement("SELECT 40 + 2");
        Assert.NotSame(statement, again);
        Assert.Equal(raw.SQLITE_ROW, raw.sqlite3_step(again));
        raw.sqlite3_reset(again);

        // A statement SQLite refuses is an error with its reason.
        var refused = Assert.Throws<SqliteException>(() => writer.NativeStatement("SELECT FROM nowhere"));
        Assert.Contains("syntax error", refused.Message);
    }

    [Theory]
    [InlineData("", "kept")]
    [InlineData(";No Reset On Close=false", "")]
    public async Task Postgres_connections_are_reused_without_a_reset_unless_the_connection_string_asks_for_one(string extra, string expected)
    {
        await using var postgres = await PostgresDatabase.CreateAsync();
        // One pooled connection, so the second open gets the first one's.
        var options = new DatabaseOptions { Provider = "postgres", ConnectionString = postgres.ConnectionString + ";Maximum Pool Size=1" + extra };
        await using var database = new Database(Options.Create(options), Options.Create(new OpsgateOptions()));
        await using (var first = await database.OpenAsync())
            await first.ExecuteAsync("SET application_name = 'kept'");
        await using var second = await database.OpenAsync();
        Assert.Equal(expected, await second.ExecuteScalarAsync<string>("SHOW application_name"));
    }

    [Fact]
    public async Task Postgres_runs_up_to_PostgresWriters_write_transactions_at_once()
    {
        await using var postgres = await PostgresDatabase.CreateAsync();
        var options = new DatabaseOptions { Provider = "postgres", ConnectionString = postgres.ConnectionString, PostgresWriters = 2 };
        await using var database = new Database(Options.Create(options), Options.Create(new OpsgateOptions()));

        var first = await database.WriteAsync();
        await using var second = await database.WriteAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotSame(first.Connection, second.Connection);
        var third = database.WriteAsync();
        await Task.Delay(100);
        Assert.False(third.IsCompleted);
        await first.DisposeAsync();
        await using var turn = await third.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Statements_held_for_the_commit_run_in_order_with_it_and_vanish_with_a_rollback(Provider provider)
    {
        using var dir = new TempDir();
        await using var postgres = provider == Provider.Postgres ? await PostgresDatabase.CreateAsync() : null;
        var options = postgres is null ? new DatabaseOptions() : new DatabaseOptions { Provider = "postgres", ConnectionString = postgres.ConnectionString };
        await using var database = new Database(Options.Create(options), Options.Create(new OpsgateOptions { DataDir = dir.Path }));
        await using (var setup = await database.WriteAsync())
        {
            await setup.Connection.ExecuteAsync("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NULL)", transaction: setup.Transaction);
            await setup.CommitAsync();
        }

        await using (var write = await database.WriteAsync())
        {
            await write.LaterAsync("INSERT INTO t (k, v) VALUES (@K, @V)", new { K = 1, V = "first", Unused = "not named in the statement" });
            await write.LaterAsync("INSERT INTO t (k, v) VALUES (@K, @V)", new { K = 2, V = (string?)null });
            await write.LaterAsync("UPDATE t SET v = v || ' then second' WHERE k = @k", new { k = 1 });
            await write.CommitAsync();
        }
        await using (var write = await database.WriteAsync())
        {
            await write.LaterAsync("INSERT INTO t (k, v) VALUES (@K, @V)", new { K = 3, V = "rolled back" });
            // not committed: disposing rolls it back
        }

        await using var read = await database.OpenAsync();
        Assert.Equal(["1:first then second", "2:"], await read.QueryAsync<string>("SELECT k || ':' || COALESCE(v, '') FROM t ORDER BY k"));
    }
}
