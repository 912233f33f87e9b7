using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>
/// Secret parameters (<c>secret: true</c>) and secret-named values inside object parameters (Ansible extra vars): the
/// step that uses one gets the value, and nothing anyone can read shows it: jobs, steps, events, the audit log, the
/// database's rows.
/// </summary>
public sealed class SecretParameterTests
{
    private const string Token = "marker-token-7f3a9c";
    private const string Password = "marker-pass-22b81d";

    private const string Runbook = """
        name: call-with-token
        parameters:
          - {name: url, type: string, required: true}
          - {name: token, type: string, required: true, secret: true}
          - {name: extra, type: object, default: {}}
        steps:
          - name: call
            kind: http.call
            with:
              url: "{{ params.url }}"
              method: post
              headers: {X-Token: "{{ params.token }}"}
              body: "{{ params.extra }}"
          - name: report
            kind: noop
            with: {message: "answer: {{ steps.call.outputs.body }}"}
        """;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_secret_parameter_reaches_its_step_and_nothing_shows_it(Provider provider)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "call.yaml"), Runbook);
        var received = new List<(string? Token, string Body)>();
        // Fails the first call, so the job is retried; echoes the token back, as a careless service might.
        await using var stub = await StubHttpServer.StartAsync(async (ctx, n) =>
        {
            var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
            lock (received)
                received.Add((ctx.Request.Headers["X-Token"].FirstOrDefault(), body));
            ctx.Response.StatusCode = n == 0 ? 500 : 200;
            await ctx.Response.WriteAsync($"hello {ctx.Request.Headers["X-Token"]}");
        });
        await using var server = await OpsgateServer.StartAsync(provider, [$"--Jobs:RunbookDirectory={dir.Path}"]);
        var (_, viewerKey) = await server.CreateKeyAsync("watcher", "viewer");
        var viewer = server.Client(viewerKey);

        var runbooks = await viewer.GetFromJsonAsync<JsonElement>("/api/v1/runbooks");
        var token = runbooks.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "call-with-token")
            .GetProperty("parameters").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "token");
        Assert.True(token.GetProperty("secret").GetBoolean());

        var id = await TestJobs.SubmitAsync(server.Admin, "call-with-token",
            new { url = $"{stub.BaseAddress}hook", token = Token, extra = new { user = "bob", db_password = Password } });
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, id)).Status());
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsJsonAsync($"/api/v1/jobs/{id}/retry", new { })).StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());

        // The step got the real values, on the first run and on the retry.
        Assert.Equal(2, received.Count);
        Assert.All(received, r => Assert.Equal(Token, r.Token));
        Assert.All(received, r => Assert.Contains(Password, r.Body));

        // What people can read: the parameters redacted, the echoed token masked in outputs and details.
        Assert.Equal("[REDACTED]", job.GetProperty("params").GetProperty("token").GetString());
        Assert.Equal("[REDACTED]", job.GetProperty("params").GetProperty("extra").GetProperty("db_password").GetString());
        Assert.Equal("bob", job.GetProperty("params").GetProperty("extra").GetProperty("user").GetString());
        Assert.Equal("answer: hello [REDACTED]", job.Step("report").GetProperty("detail").GetString());
        var everything = new StringBuilder();
        foreach (var client in new[] { viewer, server.Admin })
        {
            foreach (var path in new[] { $"/api/v1/jobs/{id}", "/api/v1/jobs", $"/api/v1/jobs/{id}/events", "/api/v1/audit?limit=1000" })
            {
                var text = await client.GetStringAsync(path);
                Assert.DoesNotContain(Token, text);
                Assert.DoesNotContain(Password, text);
                everything.Append(text);
            }
        }
        Assert.Contains("[REDACTED]", everything.ToString());

        // Nor any row of the database: the secret store holds them encrypted.
        var dump = await DumpAsync(server);
        Assert.DoesNotContain(Token, dump);
        Assert.DoesNotContain(Password, dump);
        Assert.Contains($"job/{id}/params", dump);
    }

    /// <summary>Every text value of every table, as one string.</summary>
    internal static async Task<string> DumpAsync(OpsgateServer server)
    {
        await using var connection = await server.OpenDatabaseAsync();
        var tables = new List<string>();
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = server.Provider == Provider.Sqlite
                ? "SELECT name FROM sqlite_master WHERE type = 'table'"
                : "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                tables.Add(reader.GetString(0));
        }
        var dump = new StringBuilder();
        foreach (var table in tables)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT * FROM \"{table}\""; // names from the catalog, not from input
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                for (var i = 0; i < reader.FieldCount; i++)
                    dump.Append(reader.IsDBNull(i) ? "" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)).Append('|');
                dump.Append('\n');
            }
        }
        return dump.ToString();
    }
}
