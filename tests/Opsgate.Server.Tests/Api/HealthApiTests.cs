using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Api;

public sealed class HealthApiTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Probes_need_no_key_the_report_does_and_readiness_fails_while_migrations_are_missing(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var anonymous = server.Client();
        Assert.Equal("live", (await GetJsonAsync(anonymous, "/health/live", HttpStatusCode.OK)).GetProperty("status").GetString());
        Assert.Equal("ready", (await GetJsonAsync(anonymous, "/health/ready", HttpStatusCode.OK)).GetProperty("status").GetString());
        await Problem.AssertAsync(await anonymous.GetAsync("/health"), HttpStatusCode.Unauthorized);
        var report = await GetJsonAsync(server.Admin, "/health", HttpStatusCode.OK);
        Assert.Equal("healthy", report.GetProperty("status").GetString());
        Assert.Equal("healthy", report.GetProperty("services").GetProperty("database").GetString());

        await using (var connection = await server.OpenDatabaseAsync())
            Assert.Equal(1, await connection.ExecuteAsync("DELETE FROM schema_migrations WHERE version = 1"));

        var ready = await GetJsonAsync(anonymous, "/health/ready", HttpStatusCode.ServiceUnavailable);
        Assert.Equal("not ready", ready.GetProperty("status").GetString());
        Assert.Equal("migrations pending", ready.GetProperty("database").GetString());
        Assert.Equal("migrations pending", (await GetJsonAsync(anonymous, "/ready", HttpStatusCode.ServiceUnavailable)).GetProperty("database").GetString());
        report = await GetJsonAsync(server.Admin, "/health", HttpStatusCode.ServiceUnavailable);
        Assert.Equal("unhealthy: migrations pending", report.GetProperty("services").GetProperty("database").GetString());
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task Readiness_fails_when_the_PostgreSQL_database_is_gone()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Postgres);
        var anonymous = server.Client();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/ready")).StatusCode);

        await server.Postgres!.DropAsync();

        var ready = await GetJsonAsync(anonymous, "/health/ready", HttpStatusCode.ServiceUnavailable);
        Assert.Equal("unreachable", ready.GetProperty("database").GetString());
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task Pxbackup_runners_ready_route_answers_without_a_key_like_health_ready()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var ready = await GetJsonAsync(server.Client(), "/ready", HttpStatusCode.OK);
        Assert.Equal("ready", ready.GetProperty("status").GetString());
        Assert.Equal("connected", ready.GetProperty("database").GetString());
        Assert.True(ready.TryGetProperty("timestamp", out _), ready.ToString());
        // Its /health, like Opsgate's, wants a credential.
        await Problem.AssertAsync(await server.Client().GetAsync("/health"), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_path_no_route_matches_is_a_404_without_a_key_too()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var anonymous = server.Client();
        var detail = await Problem.AssertAsync(await anonymous.GetAsync("/api/v1/jbos"), HttpStatusCode.NotFound);
        Assert.Equal("there is no GET /api/v1/jbos in this API; the endpoints are listed at /api/v1/docs", detail);
        await Problem.AssertAsync(await server.Client("not-a-key").GetAsync("/readyz"), HttpStatusCode.NotFound);
        for (var i = 0; i < 5; i++)
            await Problem.AssertAsync(await anonymous.PostAsync("/api/v1/nothing-here", new StringContent("{}")), HttpStatusCode.NotFound);
        // An existing route still wants the key.
        await Problem.AssertAsync(await anonymous.GetAsync("/api/v1/jobs"), HttpStatusCode.Unauthorized);

        // Anyone can send these: the anonymous POSTs leave one entry this minute, as 401s do, not one each.
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?actor=anonymous&limit=100");
        var entry = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.Equal(404, entry.GetProperty("http_status").GetInt32());
        Assert.Equal("POST /api/v1/nothing-here", entry.GetProperty("action").GetString());
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path, HttpStatusCode status)
    {
        var response = await client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"GET {path}: expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
