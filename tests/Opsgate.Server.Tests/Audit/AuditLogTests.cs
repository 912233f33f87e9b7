using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Opsgate.Server.Audit;
using Opsgate.Server.Persistence;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Audit;

public sealed class AuditLogTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Every_mutation_is_audited_with_who_what_and_outcome(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var (id, key) = await server.CreateKeyAsync("audited", "viewer", ["prod"]);
        await server.Admin.DeleteAsync($"/api/v1/apikeys/{id}");

        var page = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=10");
        var items = page.GetProperty("items").EnumerateArray().ToList();
        var revoke = items.First(e => e.GetProperty("action").GetString() == "apikey.revoke");
        var create = items.First(e => e.GetProperty("action").GetString() == "apikey.create");
        Assert.True(revoke.GetProperty("id").GetInt64() > create.GetProperty("id").GetInt64());
        Assert.Equal("bootstrap-admin", create.GetProperty("actor").GetString());
        Assert.Equal("ak_bootstrap", create.GetProperty("principal_id").GetString());
        Assert.Equal("apikey", create.GetProperty("auth_method").GetString());
        Assert.Equal("127.0.0.1", create.GetProperty("source_ip").GetString());
        Assert.Equal("success", create.GetProperty("status").GetString());
        Assert.Equal(201, create.GetProperty("http_status").GetInt32());
        Assert.Equal(id, create.GetProperty("resource_name").GetString());
        Assert.Equal("audited", create.GetProperty("request_body").GetProperty("name").GetString());
        Assert.Equal(64, create.GetProperty("hash").GetString()!.Length);
        Assert.Equal(id, revoke.GetProperty("resource_name").GetString());
        Assert.Equal(204, revoke.GetProperty("http_status").GetInt32());
        Assert.False(string.IsNullOrEmpty(create.GetProperty("request_id").GetString()));

        // The key itself is in no audit entry.
        Assert.DoesNotContain(key, page.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_sqlite_refuses_is_a_503_and_the_next_batches_still_chain_on_sqlite()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await server.CreateKeyAsync("before", "viewer");
        // The schema changes under the writer's prepared insert, and the insert of one entry then fails inside SQLite.
        await using (var db = await server.OpenDatabaseAsync())
        {
            await db.ExecuteAsync("""
                CREATE TRIGGER refuse_one BEFORE INSERT ON audit_log WHEN NEW.request_body LIKE '%"refused"%'
                BEGIN SELECT RAISE(ABORT, 'refused by the test'); END
                """);
        }

        var refused = await server.Admin.PostAsJsonAsync("/api/v1/apikeys", new { name = "refused", role = "viewer" }, OpsgateServer.Json);
        Assert.Equal("the audit log could not be written, so the request was not confirmed; try again", await Problem.AssertAsync(refused, HttpStatusCode.ServiceUnavailable));
        await Task.WhenAll(Enumerable.Range(1, 4).Select(i => server.CreateKeyAsync($"after{i}", "viewer")));

        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
        Assert.Equal(5, verify.GetProperty("entries").GetInt64());
        var page = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=apikey.create&limit=10");
        var names = page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("request_body").GetProperty("name").GetString()).Order().ToList();
        Assert.Equal(["after1", "after2", "after3", "after4", "before"], names);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Verify_detects_a_row_edited_directly_in_the_database(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        for (var i = 0; i < 5; i++)
            await server.CreateKeyAsync($"k{i}", "viewer");
        var ok = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(ok.GetProperty("ok").GetBoolean());
        Assert.Equal(5, ok.GetProperty("entries").GetInt64());

        await using (var db = await server.OpenDatabaseAsync())
            await db.ExecuteAsync("UPDATE audit_log SET actor = 'someone-else' WHERE id = 3");

        var bad = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.False(bad.GetProperty("ok").GetBoolean());
        Assert.Equal(3, bad.GetProperty("first_bad_id").GetInt64());
    }

    [Fact]
    public async Task Verify_detects_a_deleted_row()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        for (var i = 0; i < 4; i++)
            await server.CreateKeyAsync($"k{i}", "viewer");
        await using (var db = await server.OpenDatabaseAsync())
            await db.ExecuteAsync("DELETE FROM audit_log WHERE id = 2");
        var bad = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.False(bad.GetProperty("ok").GetBoolean());
        Assert.Equal(3, bad.GetProperty("first_bad_id").GetInt64());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Concurrent_writers_keep_one_unbroken_chain(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        const int writers = 16, each = 15;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(async w =>
        {
            for (var i = 0; i < each; i++)
            {
                var response = await server.Admin.PostAsJsonAsync("/api/v1/apikeys", new { name = $"w{w}-{i}", role = "viewer" }, OpsgateServer.Json);
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            }
        }));
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
        Assert.Equal(writers * each, verify.GetProperty("entries").GetInt64());
    }

    [Fact]
    public async Task Two_servers_on_one_postgres_database_share_one_chain()
    {
        await using var postgres = await PostgresDatabase.CreateAsync();
        string[] args = ["--Database:Provider=postgres", $"--Database:ConnectionString={postgres.ConnectionString}"];
        await using var a = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        await using var b = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async w =>
        {
            var server = w % 2 == 0 ? a : b;
            for (var i = 0; i < 10; i++)
                await server.CreateKeyAsync($"r{w}-{i}", "viewer");
        }));
        var verify = await a.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
        Assert.Equal(80, verify.GetProperty("entries").GetInt64());
    }

    [Fact]
    public async Task Job_transitions_on_postgres_do_not_wait_for_the_chain_and_readers_wait_for_their_entries()
    {
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var receiver = await WebhookReceiver.StartAsync(async (ctx, _) => await answer.Task);
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "call.yaml"), """
            name: call
            parameters:
              - {name: url, type: string, required: true}
            steps:
              - name: call
                kind: http.call
                with: {url: "{{ params.url }}"}
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Postgres, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "call", new { url = receiver.Url("/slow") });
        await TestJobs.WaitAsync(server.Admin, id, j => j.Step("call").GetProperty("status").GetString() == "running");

        // Another replica holds the chain's lock: the job still finishes, its entries wait, staged with it.
        await using var replica = await server.OpenDatabaseAsync();
        await using var replicaWrite = await replica.BeginTransactionAsync();
        await replica.ExecuteAsync("SELECT pg_advisory_xact_lock(@key)", new { key = 0x6f70_7367_6175_64L }, replicaWrite);
        answer.SetResult();
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());
        var read = server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?action=job.succeeded");
        await Task.Delay(300);
        Assert.False(read.IsCompleted, "the audit log was read before the finished job's entry was in it");

        await replicaWrite.RollbackAsync();
        var entry = Assert.Single((await read.WaitAsync(TimeSpan.FromSeconds(10))).GetProperty("items").EnumerateArray());
        Assert.Equal(id, entry.GetProperty("job_id").GetString());
        await using (var db = await server.OpenDatabaseAsync())
            Assert.Equal(0, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_staged"));
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
    }

    [Fact]
    public async Task Entries_another_process_left_staged_are_chained_for_a_reader_here()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Postgres);
        await server.CreateKeyAsync("before", "viewer");
        // What a process leaves when it is killed after a job transition committed and before its writer chained the entry.
        await using (var db = await server.OpenDatabaseAsync())
        {
            await db.ExecuteAsync(
                "INSERT INTO audit_staged (ts, actor, action, resource_kind, status, job_id) VALUES (now(), 'crashed-worker', 'job.succeeded', 'job', 'success', 'j-left-behind')");
        }

        // Read at once: this process staged nothing, but a reader waits for what any process left staged.
        var found = Assert.Single((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?actor=crashed-worker")).GetProperty("items").EnumerateArray());
        Assert.Equal("j-left-behind", found.GetProperty("job_id").GetString());
        Assert.Equal(2, found.GetProperty("id").GetInt64());
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
        Assert.Equal(2, verify.GetProperty("entries").GetInt64());
    }

    [Fact]
    public async Task Entries_another_process_left_staged_are_chained_by_the_writer_even_if_nobody_reads()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Postgres);
        await using var db = await server.OpenDatabaseAsync();
        await db.ExecuteAsync("INSERT INTO audit_staged (ts, actor, action, status) VALUES (now(), 'crashed-worker', 'job.succeeded', 'success')");

        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_staged") > 0 && watch.Elapsed < TimeSpan.FromSeconds(15))
            await Task.Delay(100);
        Assert.Equal(1, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_log WHERE actor = 'crashed-worker'"));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Cursor_pages_cover_every_entry_once_newest_first(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        for (var i = 0; i < 23; i++)
            await server.CreateKeyAsync($"p{i}", "viewer");
        var seen = new List<long>();
        string? cursor = null;
        do
        {
            var url = "/api/v1/audit?limit=5" + (cursor is null ? "" : $"&cursor={cursor}");
            var page = await server.Admin.GetFromJsonAsync<JsonElement>(url);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        Assert.Equal(Enumerable.Range(1, 23).Reverse().Select(i => (long)i), seen);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Entries_keep_any_text_exactly_and_still_verify(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var writer = server.App.Services.GetRequiredService<AuditWriter>();
        string[] texts = ["Zoë ünïcödé", "emoji 🚀 and 中文", "quote \" backslash \\ slash / [1, 2]", "tab\tnewline\ncontrol\u0001", "<b>&amp;</b> 'x'", ""];
        // Every field distinct, so a value stored in the wrong column shows.
        AuditEntry Entry(int i) => new()
        {
            Actor = "actor " + texts[i], SourceIp = "ip " + texts[i], Action = "test.text", ResourceKind = "kind " + texts[i],
            Namespace = "ns " + texts[i], ResourceName = "name " + texts[i], RequestBody = JsonSerializer.Serialize(new { note = texts[i] }),
            Status = AuditStatus.Error, HttpStatus = 400 + i, ErrorMessage = "error " + texts[i], PrincipalId = "principal " + texts[i],
            AuthMethod = "method " + texts[i], RequestId = "request " + texts[i], DryRun = i % 2 == 0, JobId = "job " + texts[i],
            Cluster = "cluster " + texts[i],
        };
        // Half as requests append them (together, so they may share a batch), half as the job engine does: in one
        // transaction, which chains several entries at once.
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => writer.AppendAsync(Entry(i))));
        var database = server.App.Services.GetRequiredService<Database>();
        await using (var write = await database.WriteAsync())
        {
            await writer.AppendWithinAsync(write, [.. Enumerable.Range(3, 3).Select(Entry)]);
            await write.CommitAsync();
        }
        writer.Committed(3);

        var page = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=test.text&limit=10");
        var items = page.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(texts.Length, items.Count);
        foreach (var item in items)
        {
            var i = item.GetProperty("http_status").GetInt32() - 400;
            foreach (var (field, prefix) in new[]
            {
                ("actor", "actor "), ("source_ip", "ip "), ("resource_kind", "kind "), ("namespace", "ns "), ("resource_name", "name "),
                ("error_message", "error "), ("principal_id", "principal "), ("auth_method", "method "), ("request_id", "request "),
                ("job_id", "job "), ("cluster", "cluster "),
            })
            {
                Assert.Equal(prefix + texts[i], item.GetProperty(field).GetString());
            }
            Assert.Equal(texts[i], item.GetProperty("request_body").GetProperty("note").GetString());
            Assert.Equal("error", item.GetProperty("status").GetString());
            Assert.Equal(i % 2 == 0, item.GetProperty("dry_run").GetBoolean());
        }
        var byActor = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?actor={Uri.EscapeDataString("actor " + texts[1])}");
        Assert.Equal(1, byActor.GetProperty("items").GetArrayLength());
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
    }

    [Fact]
    public async Task Filters_select_by_actor_action_namespace_and_time()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, configureServices: s => s.AddSingleton<TimeProvider>(clock));
        var (viewerId, _) = await server.CreateKeyAsync("early", "viewer");
        clock.Advance(TimeSpan.FromHours(1));
        var (_, otherAdmin) = await server.CreateKeyAsync("other-admin", "admin");
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(HttpStatusCode.NoContent, (await server.Client(otherAdmin).DeleteAsync($"/api/v1/apikeys/{viewerId}")).StatusCode);

        async Task<List<string>> Actions(string query) =>
            (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?" + query)).GetProperty("items").EnumerateArray()
            .Select(e => e.GetProperty("action").GetString()!).ToList();

        Assert.Equal(["apikey.revoke"], await Actions("actor=other-admin"));
        Assert.Equal(2, (await Actions("action=apikey.create")).Count);
        Assert.Equal(["apikey.revoke", "apikey.create"], await Actions("since=2026-11-01T12:30:00Z"));
        Assert.Equal(["apikey.create"], await Actions("until=2026-11-01T12:30:00Z"));
        Assert.Empty(await Actions("namespace=prod"));
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=100000", "limit")]
    [InlineData("since=yesterday", "since")]
    [InlineData("until=2026-13-45", "until")]
    [InlineData("cursor=abc", "cursor")]
    [InlineData("cursor=-5", "cursor")]
    public async Task Bad_query_parameters_are_400s_naming_the_parameter(string query, string field)
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var detail = await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/audit?" + query), HttpStatusCode.BadRequest);
        Assert.StartsWith(field + ":", detail, StringComparison.Ordinal);
    }
}
