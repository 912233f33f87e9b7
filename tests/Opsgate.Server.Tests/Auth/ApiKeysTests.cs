using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Auth;

public sealed class ApiKeysTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Created_key_is_shown_once_works_in_both_headers_and_stops_working_when_revoked(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var created = await server.Admin.PostAsJsonAsync("/api/v1/apikeys", new { name = "ci-deployer", role = "operator", namespaces = new[] { "prod", "staging" } }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Content.ReadFromJsonAsync<JsonElement>();
        var id = body.GetProperty("id").GetString()!;
        var key = body.GetProperty("key").GetString()!;
        Assert.Equal($"/api/v1/apikeys/{id}", created.Headers.Location?.OriginalString);
        Assert.Equal("operator", body.GetProperty("role").GetString());
        Assert.Equal(["prod", "staging"], body.GetProperty("namespaces").EnumerateArray().Select(e => e.GetString()));

        // The key authenticates as X-API-Key and as a bearer token.
        Assert.Equal(HttpStatusCode.OK, (await server.Client(key).GetAsync("/api/v1/audit?limit=1")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.BearerClient(key).GetAsync("/api/v1/audit?limit=1")).StatusCode);

        // Listing never shows the key or its hash.
        var list = await server.Admin.GetStringAsync("/api/v1/apikeys");
        Assert.Contains(id, list, StringComparison.Ordinal);
        Assert.DoesNotContain(key, list, StringComparison.Ordinal);
        Assert.DoesNotContain("hash", list, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"/api/v1/apikeys/{id}")).StatusCode);
        var detail = await Problem.AssertAsync(await server.Client(key).GetAsync("/api/v1/audit?limit=1"), HttpStatusCode.Unauthorized);
        Assert.Contains("revoked", detail, StringComparison.Ordinal);

        Assert.DoesNotContain(id, await server.Admin.GetStringAsync("/api/v1/apikeys"), StringComparison.Ordinal);
        Assert.Contains(id, await server.Admin.GetStringAsync("/api/v1/apikeys?include_revoked=true"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_key_is_stored_only_as_a_hash()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (_, key) = await server.CreateKeyAsync("hashed", "viewer");
        var dbBytes = await File.ReadAllBytesAsync(Path.Combine(server.DataDir, "opsgate.db"));
        var walPath = Path.Combine(server.DataDir, "opsgate.db-wal");
        var walBytes = File.Exists(walPath) ? await File.ReadAllBytesAsync(walPath) : [];
        var needle = System.Text.Encoding.UTF8.GetBytes(key);
        Assert.Equal(-1, dbBytes.AsSpan().IndexOf(needle));
        Assert.Equal(-1, walBytes.AsSpan().IndexOf(needle));
    }

    [Fact]
    public async Task An_expired_key_is_refused_with_the_reason()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            ["--Auth:KeyCacheTtl=00:00:00"], services => services.AddSingleton<TimeProvider>(clock));
        var response = await server.Admin.PostAsJsonAsync("/api/v1/apikeys",
            new { name = "short-lived", role = "viewer", expires_at = clock.GetUtcNow().AddHours(1) }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var key = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        var client = server.Client(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/audit?limit=1")).StatusCode);

        clock.Advance(TimeSpan.FromHours(2));
        var detail = await Problem.AssertAsync(await client.GetAsync("/api/v1/audit?limit=1"), HttpStatusCode.Unauthorized);
        Assert.Contains("expired", detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("viewer")]
    [InlineData("operator")]
    [InlineData("approver")]
    public async Task Only_admins_manage_keys_and_each_refusal_is_a_403_that_is_audited(string role)
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (_, key) = await server.CreateKeyAsync($"a-{role}", role);
        var client = server.Client(key);
        var detail = await Problem.AssertAsync(
            await client.PostAsJsonAsync("/api/v1/apikeys", new { name = "sneaky", role = "admin" }, OpsgateServer.Json), HttpStatusCode.Forbidden);
        Assert.Contains("requires role admin", detail, StringComparison.Ordinal);
        await Problem.AssertAsync(await client.GetAsync("/api/v1/apikeys"), HttpStatusCode.Forbidden);

        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=apikey.create&limit=5");
        var denial = audit.GetProperty("items").EnumerateArray().First(e => e.GetProperty("status").GetString() == "denied");
        Assert.Equal($"a-{role}", denial.GetProperty("actor").GetString());
        Assert.Equal(403, denial.GetProperty("http_status").GetInt32());
        Assert.Equal(0, (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/apikeys")).GetProperty("items").EnumerateArray()
            .Count(k => k.GetProperty("name").GetString() == "sneaky"));
    }

    [Fact]
    public async Task Missing_and_garbage_keys_are_401_not_403()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var anonymous = await server.Client().GetAsync("/api/v1/apikeys");
        await Problem.AssertAsync(anonymous, HttpStatusCode.Unauthorized);
        Assert.Contains("ApiKey", anonymous.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Client("og_this-is-not-a-real-key-at-all").GetAsync("/api/v1/apikeys"), HttpStatusCode.Unauthorized);
        await Problem.AssertAsync(await server.Client("short").GetAsync("/api/v1/apikeys"), HttpStatusCode.Unauthorized);

        // The first 401 of the address's minute has its own entry; the other two wait for the minute's summary
        // (Audit/RefusalAuditTests).
        var denials = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?actor=anonymous");
        var denial = Assert.Single(denials.GetProperty("items").EnumerateArray());
        Assert.Equal(401, denial.GetProperty("http_status").GetInt32());
    }

    [Fact]
    public async Task The_last_admin_key_cannot_be_revoked()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var detail = await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/apikeys/ak_bootstrap"), HttpStatusCode.Conflict);
        Assert.Contains("last active admin key", detail, StringComparison.Ordinal);

        var (otherId, otherKey) = await server.CreateKeyAsync("second-admin", "admin");
        Assert.Equal(HttpStatusCode.NoContent, (await server.Client(otherKey).DeleteAsync("/api/v1/apikeys/ak_bootstrap")).StatusCode);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/apikeys"), HttpStatusCode.Unauthorized);
        await Problem.AssertAsync(await server.Client(otherKey).DeleteAsync($"/api/v1/apikeys/{otherId}"), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Unknown_key_id_is_404_and_malformed_id_is_400()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/apikeys/ak_doesnotexist"), HttpStatusCode.NotFound);
        var detail = await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/apikeys/'%20OR%201=1"), HttpStatusCode.BadRequest);
        Assert.StartsWith("id:", detail, StringComparison.Ordinal);
    }
}
