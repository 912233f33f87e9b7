using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Opsgate.Server.Hosting;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Auth;

/// <summary>
/// OIDC bearer tokens against a provider this test runs on loopback (discovery document + JWKS) and tokens it
/// signs, the way Keycloak and Okta would issue them.
/// </summary>
public sealed class OidcTests
{
    private const string NewKey = "/api/v1/apikeys";
    private const string ReadAudit = "/api/v1/audit?limit=1";

    [Fact]
    public async Task A_keycloak_operator_can_read_but_not_manage_api_keys()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs());
        var alice = server.BearerClient(idp.KeycloakToken("kc-1111", "alice", "offline_access", "operator"));

        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync(ReadAudit)).StatusCode);
        var detail = await Problem.AssertAsync(
            await alice.PostAsJsonAsync(NewKey, new { name = "from-alice", role = "viewer" }, OpsgateServer.Json), HttpStatusCode.Forbidden);
        Assert.Equal("this requires role admin or higher; alice has role operator", detail);

        var denial = await LatestAsync(server, "actor=alice&action=apikey.create");
        Assert.Equal("denied", denial.GetProperty("status").GetString());
        Assert.Equal(403, denial.GetProperty("http_status").GetInt32());
        Assert.Equal("oidc:kc-1111", denial.GetProperty("principal_id").GetString());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task An_okta_group_mapped_to_admin_creates_a_key_and_the_audit_log_names_the_user(Provider provider)
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(provider,
            idp.OpsgateArgs("--Auth:Oidc:RoleClaim=groups", "--Auth:Oidc:RoleMap:ops-admins=admin"));
        var bob = server.BearerClient(idp.OktaToken("00u1bob", "bob@example.com", "Everyone", "ops-admins"));

        var created = await bob.PostAsJsonAsync(NewKey, new { name = "made-by-bob", role = "viewer" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await server.Client(key).GetAsync(ReadAudit)).StatusCode);

        var entry = await LatestAsync(server, "action=apikey.create");
        Assert.Equal("success", entry.GetProperty("status").GetString());
        Assert.Equal("bob@example.com", entry.GetProperty("actor").GetString());
        Assert.Equal("oidc", entry.GetProperty("auth_method").GetString());
        Assert.Equal("oidc:00u1bob", entry.GetProperty("principal_id").GetString());
        Assert.Equal("made-by-bob", entry.GetProperty("request_body").GetProperty("name").GetString());
    }

    [Fact]
    public async Task The_highest_mapped_role_wins_and_unmapped_groups_are_ignored()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs(
            "--Auth:Oidc:RoleClaim=groups", "--Auth:Oidc:RoleMap:ops-viewers=viewer", "--Auth:Oidc:RoleMap:ops-approvers=approver"));
        var carol = server.BearerClient(idp.OktaToken("00u2carol", "carol", "ops-viewers", "ops-approvers", "ops-admins"));

        var detail = await Problem.AssertAsync(await carol.GetAsync(NewKey), HttpStatusCode.Forbidden);
        Assert.Equal("this requires role admin or higher; carol has role approver", detail);
    }

    [Theory]
    [InlineData("expired", "the token expired")]
    [InlineData("wrong issuer", "the token was issued by an issuer this server does not trust")]
    [InlineData("wrong audience", "the token is not meant for this server (audience must be 'opsgate')")]
    [InlineData("another key, same kid", "the token's signature is not valid")]
    [InlineData("another key, unknown kid", "the token's signature is not valid")]
    [InlineData("unsigned (alg none)", "the token's signature is not valid")]
    [InlineData("no sub", "the token has no 'sub' claim, so it does not say who is calling")]
    public async Task A_token_opsgate_cannot_trust_is_a_401_that_says_why_and_is_audited(string token, string reason)
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs());
        using var otherRsa = RSA.Create(2048);
        var admin = new Dictionary<string, object> { ["preferred_username"] = "mallory", ["realm_access"] = new Dictionary<string, object> { ["roles"] = new[] { "admin" } } };
        var jwt = token switch
        {
            "expired" => idp.Token("kc-m", admin, expires: DateTime.UtcNow.AddMinutes(-5)),
            "wrong issuer" => idp.Token("kc-m", admin, issuer: "https://idp.example.com/realms/ops"),
            "wrong audience" => idp.Token("kc-m", admin, audience: "some-other-app"),
            "another key, same kid" => idp.Token("kc-m", admin, signingKey: new RsaSecurityKey(otherRsa) { KeyId = "test-key-1" }),
            "another key, unknown kid" => idp.Token("kc-m", admin, signingKey: new RsaSecurityKey(otherRsa) { KeyId = "attacker-key" }),
            "unsigned (alg none)" => Unsigned(idp.Token("kc-m", admin)),
            "no sub" => idp.Token(null, admin),
            _ => throw new ArgumentOutOfRangeException(nameof(token)),
        };
        // Sanity check that the refusal is about the one thing this case changes: the same claims, properly signed, work.
        Assert.Equal(HttpStatusCode.OK, (await server.BearerClient(idp.Token("kc-m", admin)).GetAsync(ReadAudit)).StatusCode);

        var response = await server.BearerClient(jwt).GetAsync(ReadAudit);
        var detail = await Problem.AssertAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal(reason, detail);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        var denial = await LatestAsync(server, "actor=anonymous");
        Assert.Equal("denied", denial.GetProperty("status").GetString());
        Assert.Equal(401, denial.GetProperty("http_status").GetInt32());
        Assert.Equal(reason, denial.GetProperty("error_message").GetString());
        Assert.Equal("GET /api/v1/audit/", denial.GetProperty("action").GetString());
    }

    [Theory]
    [InlineData("keycloak")]
    [InlineData("okta")]
    public async Task A_valid_token_without_an_opsgate_role_is_a_403_not_a_401(string idpKind)
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idpKind == "keycloak"
            ? idp.OpsgateArgs()
            : idp.OpsgateArgs("--Auth:Oidc:RoleClaim=groups", "--Auth:Oidc:RoleMap:ops-admins=admin"));
        var dave = server.BearerClient(idpKind == "keycloak"
            // Keycloak's default realm roles: the user exists but nobody gave them access to Opsgate.
            ? idp.KeycloakToken("sub-dave", "dave", "offline_access", "uma_authorization", "superuser")
            // Okta's default group, and a group that only looks like an Opsgate role: only RoleMap entries count.
            : idp.OktaToken("sub-dave", "dave", "Everyone", "Admin", "ops-admins-emea"));

        var detail = await Problem.AssertAsync(await dave.GetAsync(ReadAudit), HttpStatusCode.Forbidden);
        Assert.Equal("this requires role viewer or higher; dave's token carries no Opsgate role in the configured role claim", detail);

        var denial = await LatestAsync(server, "actor=dave");
        Assert.Equal("denied", denial.GetProperty("status").GetString());
        Assert.Equal(403, denial.GetProperty("http_status").GetInt32());
        Assert.Equal("oidc", denial.GetProperty("auth_method").GetString());
        Assert.Equal("oidc:sub-dave", denial.GetProperty("principal_id").GetString());
        Assert.Equal(detail, denial.GetProperty("error_message").GetString());
    }

    [Fact]
    public async Task Api_keys_keep_working_when_oidc_is_enabled()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs());
        var (_, key) = await server.CreateKeyAsync("ci-reader", "viewer");

        Assert.Equal(HttpStatusCode.OK, (await server.Client(key).GetAsync(ReadAudit)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.BearerClient(key).GetAsync(ReadAudit)).StatusCode);
        var detail = await Problem.AssertAsync(await server.BearerClient("og_not-a-real-key-but-long-enough").GetAsync(ReadAudit), HttpStatusCode.Unauthorized);
        Assert.Equal("the API key is not valid", detail);

        var denials = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?actor=anonymous");
        Assert.Equal(1, denials.GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task When_the_provider_goes_down_known_keys_keep_working_and_health_says_it_is_down()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs());
        var erin = server.BearerClient(idp.KeycloakToken("kc-erin", "erin", "viewer"));
        Assert.Equal(HttpStatusCode.OK, (await erin.GetAsync(ReadAudit)).StatusCode);
        var healthy = await server.Admin.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        Assert.Equal("healthy", (await healthy.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("services").GetProperty("oidc").GetString());

        await idp.StopAsync();
        Assert.Equal(HttpStatusCode.OK, (await erin.GetAsync(ReadAudit)).StatusCode);
        var down = await server.Admin.GetAsync("/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        var body = await down.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("unhealthy", body.GetProperty("status").GetString());
        Assert.Equal("unhealthy: discovery document or JWKS unreachable", body.GetProperty("services").GetProperty("oidc").GetString());
        Assert.Equal("healthy", body.GetProperty("services").GetProperty("database").GetString());
    }

    [Fact]
    public async Task When_the_provider_was_never_reachable_a_token_gets_a_503_that_names_it_not_a_401()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs());
        var token = idp.KeycloakToken("kc-frank", "frank", "admin");
        await idp.StopAsync();

        var response = await server.BearerClient(token).GetAsync(ReadAudit);
        var detail = await Problem.AssertAsync(response, HttpStatusCode.ServiceUnavailable);
        Assert.Equal($"tokens cannot be checked now: the OIDC discovery document or signing keys could not be fetched from {idp.Issuer}/.well-known/openid-configuration", detail);

        var denial = await LatestAsync(server, "actor=anonymous");
        Assert.Equal("denied", denial.GetProperty("status").GetString());
        Assert.Equal(503, denial.GetProperty("http_status").GetInt32());
        // API keys do not depend on the provider.
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync(ReadAudit)).StatusCode);
    }

    [Theory]
    [InlineData("Auth:Oidc:Authority must use https", "--Auth:Oidc:Audience=opsgate")]
    [InlineData("Auth:Oidc:Audience is required", "--Auth:Oidc:RequireHttpsMetadata=false")]
    [InlineData("Auth:Oidc:RoleMap:ops-admins must be one of viewer, operator, approver, admin, not 'root'",
        "--Auth:Oidc:Audience=opsgate", "--Auth:Oidc:RequireHttpsMetadata=false", "--Auth:Oidc:RoleMap:ops-admins=root")]
    [InlineData("Auth:Oidc:ClientId must be the client id registered at the provider",
        "--Auth:Oidc:Audience=opsgate", "--Auth:Oidc:RequireHttpsMetadata=false", "--Auth:Oidc:ClientId=opsgate console")]
    public async Task A_bad_oidc_setting_stops_start_up_with_a_message_naming_the_key(string message, params string[] settings)
    {
        using var dir = new TempDir();
        await using var app = OpsgateHost.Build(
            ["--urls=http://127.0.0.1:0", $"--DataDir={dir.Path}", "--Auth:Oidc:Authority=http://127.0.0.1:9/realms/ops", .. settings]);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartOpsgateAsync());
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    private static async Task<JsonElement> LatestAsync(OpsgateServer server, string filter)
    {
        var page = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?limit=1&{filter}");
        var items = page.GetProperty("items");
        Assert.True(items.GetArrayLength() == 1, $"no audit entry matches {filter}");
        return items[0];
    }

    /// <summary>The same header and claims with <c>alg: none</c> and no signature.</summary>
    private static string Unsigned(string jwt)
    {
        var parts = jwt.Split('.');
        var header = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Base64UrlEncoder.Decode(parts[0]))!;
        header["alg"] = JsonSerializer.SerializeToElement("none");
        return Base64UrlEncoder.Encode(JsonSerializer.Serialize(header)) + "." + parts[1] + ".";
    }
}
