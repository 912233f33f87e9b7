using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Http;

/// <summary>
/// Whatever a client sends, the answer is a 4xx problem+json that says what to fix (naming the field where
/// there is one), never a 500, and a refused request changes no API key and leaves the audit chain intact.
/// </summary>
public sealed class BadInputTests
{
    private const string NameRule = "name: must be 1-63 characters";
    private const string SqlIsh = "' OR 1=1 --";
    private const string DropTable = "1; DROP TABLE audit_log";

    /// <summary>(what is wrong, the body sent to POST /api/v1/apikeys, how the problem's detail starts).</summary>
    public static readonly (string What, string Body, string Detail)[] BadCreateBodies =
    [
        ("malformed JSON", """{"name": ci, "role": "viewer"}""", "the body is not valid JSON"),
        ("truncated JSON", """{"name":"ci","role":"view""", "the body is not valid JSON"),
        ("trailing garbage", """{"name":"ci","role":"viewer"} x""", "the body is not valid JSON"),
        ("an array instead of an object", """[{"name":"ci","role":"viewer"}]""", "the body must be a JSON object"),
        ("a string instead of an object", "\"ci\"", "the body must be a JSON object"),
        ("an empty body", "", "the request body is missing"),
        ("a null body", "null", "the request body is missing"),
        ("a number for name", """{"name":7,"role":"viewer"}""", "$.name: must be a string"),
        ("a boolean for role", """{"name":"ci","role":true}""", "$.role: must be a string"),
        ("a string for namespaces", """{"name":"ci","role":"viewer","namespaces":"prod"}""", "$.namespaces: must be an array"),
        ("a number in namespaces", """{"name":"ci","role":"viewer","namespaces":[1]}""", "$.namespaces[0]: must be a string"),
        ("words for expires_at", """{"name":"ci","role":"viewer","expires_at":"tomorrow"}""", "$.expires_at: must be an ISO 8601 timestamp"),
        ("a number for expires_at", """{"name":"ci","role":"viewer","expires_at":1767225600}""", "$.expires_at: must be a string"),
        ("an unrepresentable expires_at", """{"name":"ci","role":"viewer","expires_at":"9999-12-31T23:59:59-14:00"}""", "$.expires_at: must be an ISO 8601 timestamp"),
        ("an unknown field", """{"name":"ci","role":"viewer","owner":"me"}""", "$.owner: unknown field"),
        ("choosing the key itself", """{"name":"ci","role":"viewer","key":"og_mine"}""", "$.key: unknown field"),
        ("a field given twice", """{"name":"ci","role":"viewer","role":"admin"}""", "$.role: appears more than once"),
        ("a field given twice in another case", """{"name":"ci","Name":"other","role":"viewer"}""", "$.name: appears more than once"),
        ("null for name", """{"name":null,"role":"viewer"}""", "$.name: must not be null"),
        ("null for role", """{"name":"ci","role":null}""", "$.role: must not be null"),
        ("no name", """{"role":"viewer"}""", "missing required field(s): 'name'"),
        ("an empty object", "{}", "missing required field(s): 'name', 'role'"),
        ("an unknown role", """{"name":"ci","role":"superuser"}""", "role: must be one of viewer, operator, approver, admin"),
        ("an empty role", """{"name":"ci","role":""}""", "role: must be one of"),
        ("a role with a NUL", """{"name":"ci","role":"admin\u0000"}""", "role: must be one of"),
        ("an empty name", """{"name":"","role":"viewer"}""", NameRule),
        ("a name with a space", """{"name":"ci deployer","role":"viewer"}""", NameRule),
        ("a name of 64 characters", $$"""{"name":"{{new string('n', 64)}}","role":"viewer"}""", NameRule),
        ("a SQL-ish name", $$"""{"name":"{{SqlIsh}}","role":"viewer"}""", NameRule),
        ("a statement as name", $$"""{"name":"{{DropTable}}","role":"viewer"}""", NameRule),
        ("a path as name", """{"name":"../../etc/passwd","role":"viewer"}""", NameRule),
        ("a name with a NUL", """{"name":"ci\u0000x","role":"viewer"}""", NameRule),
        ("a name with a lone surrogate", """{"name":"ci\ud800","role":"viewer"}""", "$.name: is not valid Unicode text"),
        ("no namespaces in the list", """{"name":"ci","role":"viewer","namespaces":[]}""", "namespaces: must hold at least one namespace"),
        ("an upper-case namespace", """{"name":"ci","role":"viewer","namespaces":["Prod"]}""", "namespaces[0]: must be a DNS-1123 label"),
        ("a path as second namespace", """{"name":"ci","role":"viewer","namespaces":["prod","../kube-system"]}""", "namespaces[1]: must be a DNS-1123 label"),
        ("a namespace with a dot", """{"name":"ci","role":"viewer","namespaces":["prod.eu"]}""", "namespaces[0]: must be a DNS-1123 label"),
        ("a namespace starting with '-'", """{"name":"ci","role":"viewer","namespaces":["-prod"]}""", "namespaces[0]: must be a DNS-1123 label"),
        ("a namespace of 64 characters", $$"""{"name":"ci","role":"viewer","namespaces":["{{new string('a', 64)}}"]}""", "namespaces[0]: must be a DNS-1123 label"),
        ("a SQL-ish namespace", $$"""{"name":"ci","role":"viewer","namespaces":["{{SqlIsh}}"]}""", "namespaces[0]: must be a DNS-1123 label"),
        ("a null namespace", """{"name":"ci","role":"viewer","namespaces":[null]}""", "namespaces[0]: must be a DNS-1123 label"),
        ("expires_at in the past", """{"name":"ci","role":"viewer","expires_at":"2001-01-01T00:00:00Z"}""", "expires_at: must be in the future"),
    ];

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Every_bad_create_body_is_a_400_naming_the_problem_and_is_audited_as_an_error(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        await server.CreateKeyAsync("existing", "operator", ["prod"]);
        var before = await SnapshotAsync(server);

        var wrong = new List<string>();
        foreach (var (what, body, expected) in BadCreateBodies)
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            var (status, mediaType, detail) = await ReadAsync(await server.Admin.PostAsync("/api/v1/apikeys", content));
            if (status != 400 || mediaType != "application/problem+json" || !detail.StartsWith(expected, StringComparison.Ordinal))
                wrong.Add($"{what}: {status} {mediaType} \"{detail}\" (wanted 400 application/problem+json \"{expected}…\")");
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));

        var after = await SnapshotAsync(server);
        Assert.Equal(before.ApiKeys, after.ApiKeys);
        Assert.Equal(before.Successes, after.Successes);
        Assert.Equal(before.Entries + BadCreateBodies.Length, after.Entries);
        Assert.Equal(BadCreateBodies.Length, after.Errors - before.Errors);
        await AssertChainOkAsync(server);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Bad_input_sent_alongside_good_requests_does_not_fail_them(Provider provider)
    {
        // Audit entries are committed in batches; an entry quoting a NUL once failed its whole batch on PostgreSQL.
        await using var server = await OpsgateServer.StartAsync(provider);
        const int each = 25;
        var good = Enumerable.Range(0, each).Select(async i =>
            (await server.Admin.PostAsJsonAsync("/api/v1/apikeys", new { name = $"good-{i}", role = "viewer" }, OpsgateServer.Json)).StatusCode);
        var bad = Enumerable.Range(0, each).Select(async i =>
            (await server.Admin.PostAsJsonAsync("/api/v1/apikeys", new { name = $"bad\0{i}", role = "viewer\0" }, OpsgateServer.Json)).StatusCode);
        var results = await Task.WhenAll(good.Concat(bad));

        Assert.All(results.Take(each), status => Assert.Equal(HttpStatusCode.Created, status));
        Assert.All(results.Skip(each), status => Assert.Equal(HttpStatusCode.BadRequest, status));
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
        Assert.Equal(2 * each, verify.GetProperty("entries").GetInt64());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Hostile_key_ids_in_the_path_are_4xx_problems_and_revoke_nothing(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var (victim, _) = await server.CreateKeyAsync("victim", "viewer");
        var before = await SnapshotAsync(server);

        (string Target, int Status, string Detail)[] cases =
        [
            ("'%20OR%201=1%20--", 400, "id: must be an API key id"),
            ("'%20OR%20'1'='1", 400, "id: must be an API key id"),
            ("1;%20DROP%20TABLE%20audit_log", 400, "id: must be an API key id"),
            ($"{victim}'%20OR%201=1%20--", 400, "id: must be an API key id"),
            ($"{victim}%25", 400, "id: must be an API key id"),
            ("..%2F..%2Fetc%2Fpasswd", 400, "id: must be an API key id"),
            ("%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400, "id: must be an API key id"),
            ($"{victim}%2F..%2F..", 400, "id: must be an API key id"),
            ("%C0%AE%C0%AE", 400, "id: must be an API key id"),
            ("%2e%2e", 404, "there is no DELETE /api/v1"),
            ("..", 404, "there is no DELETE /api/v1"),
            ("ak_" + new string('a', 41), 400, "id: must be an API key id"),
            (new string('a', 4000), 400, "id: must be an API key id"),
            ("ak_doesnotexist", 404, "API key ak_doesnotexist does not exist"),
        ];
        var wrong = new List<string>();
        foreach (var (target, status, expected) in cases)
        {
            var response = await RawHttp.SendAsync(server.BaseAddress, "DELETE", "/api/v1/apikeys/" + target, OpsgateServer.AdminKey);
            var detail = Detail(response.Body);
            if (response.Status != status || response.MediaType != "application/problem+json" || !detail.StartsWith(expected, StringComparison.Ordinal))
                wrong.Add($"{Shorten(target)}: {response.Status} {response.MediaType} \"{Shorten(detail)}\" (wanted {status} \"{expected}…\")");
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));

        // Kestrel refuses these itself, before Opsgate sees them, with a bare 4xx: never a 500, never a revoke.
        var nul = await RawHttp.SendAsync(server.BaseAddress, "DELETE", "/api/v1/apikeys/ak_%00x", OpsgateServer.AdminKey);
        Assert.Equal(400, nul.Status);
        var tooLong = await RawHttp.SendAsync(server.BaseAddress, "DELETE", "/api/v1/apikeys/" + new string('a', 20_000), OpsgateServer.AdminKey);
        Assert.Equal(414, tooLong.Status);

        var after = await SnapshotAsync(server);
        Assert.Equal(before.ApiKeys, after.ApiKeys);
        Assert.Equal(before.Successes, after.Successes);
        await AssertChainOkAsync(server);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Bad_query_filters_are_400s_naming_the_parameter(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        await server.CreateKeyAsync("existing", "viewer");
        var before = await SnapshotAsync(server);

        (string Url, string Detail)[] cases =
        [
            ($"/api/v1/audit?limit={Q(SqlIsh)}", "limit: must be a whole number"),
            ($"/api/v1/audit?limit={Q(DropTable)}", "limit: must be a whole number"),
            ("/api/v1/audit?limit=99999999999999999999", "limit: must be a whole number"),
            ("/api/v1/audit?limit=1.5", "limit: must be a whole number"),
            ("/api/v1/audit?limit=1&limit=2", "limit: must be a whole number"),
            ("/api/v1/audit?limit=-1", "limit: must be between 1 and 1000"),
            ($"/api/v1/audit?cursor={Q(SqlIsh)}", "cursor: must be a next_cursor value"),
            ($"/api/v1/audit?cursor={Q("../../etc/passwd")}", "cursor: must be a next_cursor value"),
            ($"/api/v1/audit?since={Q(SqlIsh)}", "since: must be an ISO 8601 timestamp"),
            ($"/api/v1/audit?until={Q(DropTable)}", "until: must be an ISO 8601 timestamp"),
            ($"/api/v1/audit?until={Q("../../etc/passwd")}", "until: must be an ISO 8601 timestamp"),
            ("/api/v1/audit?actor=%00", "actor: must not contain control characters"),
            ("/api/v1/audit?action=apikey.create%00", "action: must not contain control characters"),
            ("/api/v1/audit?namespace=prod%0Aother", "namespace: must not contain control characters"),
            ($"/api/v1/audit?actor={new string('a', 300)}", "actor: must be at most 256 characters"),
            ($"/api/v1/apikeys?include_revoked={Q(SqlIsh)}", "include_revoked: must be true or false"),
            ($"/api/v1/apikeys?include_revoked={Q("../../etc/passwd")}", "include_revoked: must be true or false"),
            ("/api/v1/apikeys?include_revoked=1", "include_revoked: must be true or false"),
        ];
        var wrong = new List<string>();
        foreach (var (url, expected) in cases)
        {
            var (status, mediaType, detail) = await ReadAsync(await server.Admin.GetAsync(url));
            if (status != 400 || mediaType != "application/problem+json" || !detail.StartsWith(expected, StringComparison.Ordinal))
                wrong.Add($"{Shorten(url)}: {status} {mediaType} \"{detail}\" (wanted 400 \"{expected}…\")");
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));

        var after = await SnapshotAsync(server);
        Assert.Equal(before.ApiKeys, after.ApiKeys);
        await AssertChainOkAsync(server);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Free_text_filters_match_SQL_and_paths_literally(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        for (var i = 0; i < 3; i++)
            await server.CreateKeyAsync($"k{i}", "viewer");

        // An injected OR 1=1 would return all three entries; a literal match returns none.
        foreach (var filter in new[] { "actor", "action", "namespace" })
        {
            foreach (var value in new[] { SqlIsh, DropTable, "../../etc/passwd", "%", "_" })
            {
                var page = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?{filter}={Q(value)}");
                Assert.True(page.GetProperty("items").GetArrayLength() == 0, $"{filter}={value} matched: {page}");
            }
        }
        var all = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?actor=bootstrap-admin");
        Assert.Equal(3, all.GetProperty("items").GetArrayLength());
        await AssertChainOkAsync(server);
    }

    [Fact]
    public async Task A_body_that_is_not_JSON_is_a_415_naming_the_content_type()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var before = await SnapshotAsync(server);
        const string body = """{"name":"ci","role":"viewer"}""";
        foreach (var type in new[] { "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x" })
        {
            using var content = new StringContent(body, Encoding.UTF8);
            content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(type);
            var detail = await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/apikeys", content), HttpStatusCode.UnsupportedMediaType);
            Assert.StartsWith("Content-Type: the body must be JSON sent as application/json, not " + type.Split(';')[0], detail, StringComparison.Ordinal);
        }
        using (var untyped = new ByteArrayContent(Encoding.UTF8.GetBytes(body)))
        {
            var detail = await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/apikeys", untyped), HttpStatusCode.UnsupportedMediaType);
            Assert.Equal("Content-Type: the body must be JSON sent as application/json, but the request has no Content-Type", detail);
        }

        var after = await SnapshotAsync(server);
        Assert.Equal(before.ApiKeys, after.ApiKeys);
        Assert.Equal(5, after.Errors - before.Errors);
        await AssertChainOkAsync(server);
    }

    [Fact]
    public async Task A_body_over_Http_MaxRequestBodyBytes_is_a_413_and_one_under_it_is_accepted()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Http:MaxRequestBodyBytes=2048"]);
        var before = await SnapshotAsync(server);
        var big = JsonSerializer.Serialize(new { name = "big", role = "viewer", namespaces = Enumerable.Range(0, 500).Select(i => $"ns-{i}") });
        Assert.True(Encoding.UTF8.GetByteCount(big) > 2048);

        using (var sized = new StringContent(big, Encoding.UTF8, "application/json"))
        {
            var detail = await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/apikeys", sized), HttpStatusCode.RequestEntityTooLarge);
            Assert.Equal("the request body is larger than the limit of 2048 bytes (Http:MaxRequestBodyBytes)", detail);
        }
        using (var chunked = new HttpRequestMessage(HttpMethod.Post, "/api/v1/apikeys"))
        {
            // No Content-Length: the limit must hold while the body streams in, too.
            chunked.Content = new StringContent(big, Encoding.UTF8, "application/json");
            chunked.Headers.TransferEncodingChunked = true;
            var detail = await Problem.AssertAsync(await server.Admin.SendAsync(chunked), HttpStatusCode.RequestEntityTooLarge);
            Assert.Contains("Http:MaxRequestBodyBytes", detail, StringComparison.Ordinal);
        }
        var after = await SnapshotAsync(server);
        Assert.Equal(before.ApiKeys, after.ApiKeys);
        Assert.Equal(2, after.Errors - before.Errors);
        await AssertChainOkAsync(server);

        var fits = JsonSerializer.Serialize(new { name = "fits", role = "viewer", namespaces = Enumerable.Range(0, 200).Select(i => $"ns-{i}") });
        Assert.InRange(Encoding.UTF8.GetByteCount(fits), 1500, 2048);
        var created = await server.Admin.PostAsync("/api/v1/apikeys", new StringContent(fits, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Missing_garbage_expired_and_revoked_keys_can_neither_create_nor_revoke(Provider provider)
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await OpsgateServer.StartAsync(provider, ["--Auth:KeyCacheTtl=00:00:00"], s => s.AddSingleton<TimeProvider>(clock));
        var (victim, _) = await server.CreateKeyAsync("victim", "viewer");
        var expiring = await server.Admin.PostAsJsonAsync("/api/v1/apikeys",
            new { name = "expiring-admin", role = "admin", expires_at = clock.GetUtcNow().AddHours(1) }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, expiring.StatusCode);
        var expiredBody = await expiring.Content.ReadFromJsonAsync<JsonElement>();
        var (expiredId, expiredKey) = (expiredBody.GetProperty("id").GetString()!, expiredBody.GetProperty("key").GetString()!);
        var (revokedId, revokedKey) = await server.CreateKeyAsync("revoked-admin", "admin");
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"/api/v1/apikeys/{revokedId}")).StatusCode);
        clock.Advance(TimeSpan.FromHours(2));
        var before = await SnapshotAsync(server);

        (string What, HttpClient Client, string Detail)[] callers =
        [
            ("no key", server.Client(), "authentication required"),
            ("a garbage key", server.Client("og_" + new string('x', 43)), "the API key is not valid"),
            ("a too short key", server.Client("og_short"), "the API key is not valid"),
            ("a too long key", server.Client("og_" + new string('x', 300)), "the API key is not valid"),
            ("a SQL-ish key", server.Client("og_' OR 1=1 --xxxxxxxxxxxx"), "the API key is not valid"),
            ("a garbage bearer token", server.BearerClient("og_" + new string('y', 43)), "the API key is not valid"),
            ("an expired key", server.Client(expiredKey), $"the API key {expiredId} expired at"),
            ("a revoked key", server.Client(revokedKey), $"the API key {revokedId} was revoked"),
        ];
        foreach (var (what, client, expected) in callers)
        {
            var create = await client.PostAsJsonAsync("/api/v1/apikeys", new { name = "intruder", role = "admin" }, OpsgateServer.Json);
            Assert.Contains("ApiKey", create.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            var detail = await Problem.AssertAsync(create, HttpStatusCode.Unauthorized);
            Assert.True(detail.StartsWith(expected, StringComparison.Ordinal), $"{what}: {detail}");
            detail = await Problem.AssertAsync(await client.DeleteAsync($"/api/v1/apikeys/{victim}"), HttpStatusCode.Unauthorized);
            Assert.True(detail.StartsWith(expected, StringComparison.Ordinal), $"{what}: {detail}");
        }
        var after = await SnapshotAsync(server);
        Assert.Equal(before.ApiKeys, after.ApiKeys);
        Assert.Equal(before.Successes, after.Successes);
        await AssertChainOkAsync(server);
    }

    private static string Q(string value) => Uri.EscapeDataString(value);

    private static string Shorten(string value) => value.Length <= 80 ? value : value[..80] + "…";

    private static async Task<(int Status, string? MediaType, string Detail)> ReadAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, Detail(body));
    }

    private static string Detail(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() ?? "" : "";
        }
        catch (JsonException)
        {
            return "(not JSON) " + body;
        }
    }

    private sealed record Snapshot(IReadOnlyList<string> ApiKeys, long Entries, long Successes, long Errors);

    /// <summary>Every api_keys row in full (hashes and timestamps too) and the audit log's counts, read behind the API's back.</summary>
    private static async Task<Snapshot> SnapshotAsync(OpsgateServer server)
    {
        await using var db = await server.OpenDatabaseAsync();
        var rows = await db.QueryAsync(
            "SELECT id, name, role, namespaces, key_hash, key_prefix, created_at, created_by, expires_at, revoked_at FROM api_keys ORDER BY id");
        var keys = rows.Select(r => string.Join(" | ", ((IDictionary<string, object?>)r).Select(c => $"{c.Key}={Convert.ToString(c.Value, CultureInfo.InvariantCulture)}"))).ToList();
        var entries = await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_log");
        var successes = await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_log WHERE status = 'success'");
        var errors = await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_log WHERE status = 'error'");
        return new Snapshot(keys, entries, successes, errors);
    }

    private static async Task AssertChainOkAsync(OpsgateServer server)
    {
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
    }
}
