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

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path, HttpStatusCode status)
    {
        var response = await client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"GET {path}: expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
