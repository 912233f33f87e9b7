using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>Credential use rules (min role, API key names, OIDC groups): shown in the listing, enforced at submit and on projects.</summary>
public sealed class CredentialUseTests
{
    private const string Site = """
        - hosts: all
          gather_facts: false
          tasks:
            - debug: {msg: hello}
        """;

    private static readonly object Restricted = new { min_role = "admin", keys = new[] { "ci" }, groups = new[] { "ops" } };

    private static async Task CreateCredentialAsync(OpsgateServer server, TempDir keys, string name, object? use = null)
    {
        var response = await server.Admin.PostAsJsonAsync("/api/v1/credentials", new { name, kind = "ssh_key", secret = await SshTarget.NewKeyAsync(keys), use }, OpsgateServer.Json);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create credential {name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static Task<HttpResponseMessage> SubmitAsync(HttpClient client, string inventory, string credential) =>
        client.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { playbook = "site.yml", inventory, credential } }, OpsgateServer.Json);

    /// <summary>Submits as <paramref name="client"/> and waits for the run: an allowed credential runs the playbook.</summary>
    private static async Task RunsAsync(OpsgateServer server, HttpClient client, string inventory, string credential)
    {
        var response = await SubmitAsync(client, inventory, credential);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"submit with {credential}: {(int)response.StatusCode} {body}");
        var id = JsonDocument.Parse(body).RootElement.GetProperty("job_id").GetString()!;
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(120))).Status());
    }

    private static async Task<long> JobCountAsync(OpsgateServer server)
    {
        await using var db = await server.OpenDatabaseAsync();
        return await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM jobs");
    }

    private static JsonElement Listed(JsonElement list, string name) =>
        list.GetProperty("items").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static void AssertUse(JsonElement credential, string minRole, string[] keys, string[] groups)
    {
        var use = credential.GetProperty("use");
        Assert.Equal(minRole, use.GetProperty("min_role").GetString());
        Assert.Equal(keys, use.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!));
        Assert.Equal(groups, use.GetProperty("groups").EnumerateArray().Select(g => g.GetString()!));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_credential_is_used_only_by_the_roles_and_keys_its_rules_name_and_the_rules_are_listed_without_the_secret(Provider provider)
    {
        using var playbooks = new TempDir();
        using var keys = new TempDir();
        await using var server = await AnsibleFixture.StartAsync(provider, playbooks, ("site.yml", Site));
        await CreateCredentialAsync(server, keys, "open-key");
        await CreateCredentialAsync(server, keys, "deploy-key", Restricted);
        // A row as it was before use rules existed: the migration's default applies.
        await using (var db = await server.OpenDatabaseAsync())
        {
            await db.ExecuteAsync("INSERT INTO credentials (name, kind, username, created_at, created_by) SELECT 'legacy', kind, username, created_at, created_by FROM credentials WHERE name = 'open-key'");
        }
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var ciBot = server.Client((await server.CreateKeyAsync("ci-bot", "operator")).Key);
        var ci = server.Client((await server.CreateKeyAsync("ci", "operator")).Key);
        var viewer = server.Client((await server.CreateKeyAsync("watcher", "viewer")).Key);

        // The listing shows the rules, never the secret; operators may read it, viewers may not (as before).
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/v1/credentials")).StatusCode);
        var text = await ciBot.GetStringAsync("/api/v1/credentials");
        Assert.DoesNotContain("PRIVATE KEY", text, StringComparison.Ordinal);
        var list = JsonDocument.Parse(text).RootElement;
        foreach (var item in list.GetProperty("items").EnumerateArray())
            Assert.False(item.TryGetProperty("secret", out _));
        AssertUse(Listed(list, "open-key"), "operator", [], []);
        AssertUse(Listed(list, "deploy-key"), "admin", ["ci"], ["ops"]);
        AssertUse(Listed(list, "legacy"), "operator", [], []);

        // The default rule: operators and up.
        await RunsAsync(server, ciBot, inventory, "open-key");
        // (The legacy row has no secret in the store, so its run fails at the step; the submit is what the rule decides.)
        var legacy = await SubmitAsync(ciBot, inventory, "legacy");
        Assert.Equal(HttpStatusCode.Created, legacy.StatusCode);
        await TestJobs.WaitAsync(server.Admin, (await legacy.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("job_id").GetString()!);

        // Restricted to admins and the key "ci": another operator key is refused at submit, naming the credential; no job is made.
        var before = await JobCountAsync(server);
        var detail = await Problem.AssertAsync(await SubmitAsync(ciBot, inventory, "deploy-key"), HttpStatusCode.Forbidden);
        Assert.Equal("credential 'deploy-key' may be used by role admin, keys [ci], groups [ops]; ci-bot has role operator", detail);
        Assert.Equal(before, await JobCountAsync(server));
        var denial = (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=job.submit&actor=ci-bot")).GetProperty("items")[0];
        Assert.Equal(403, denial.GetProperty("http_status").GetInt32());
        Assert.Equal(detail, denial.GetProperty("error_message").GetString());

        // The key the rule names, and an admin, may.
        await RunsAsync(server, ci, inventory, "deploy-key");
        await RunsAsync(server, server.Admin, inventory, "deploy-key");
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task An_oidc_group_the_rules_name_may_use_a_credential_and_a_user_named_like_a_listed_key_may_not(Provider provider)
    {
        using var playbooks = new TempDir();
        using var keys = new TempDir();
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await AnsibleFixture.StartAsync(provider, playbooks,
            [.. idp.OpsgateArgs("--Auth:Oidc:RoleClaim=groups", "--Auth:Oidc:RoleMap:ops-operators=operator")], ("site.yml", Site));
        await CreateCredentialAsync(server, keys, "deploy-key", Restricted);
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));

        // "ops" maps to no role, yet it is one of erin's groups, and the rule names it.
        var erin = server.BearerClient(idp.OktaToken("00u-erin", "erin", "ops-operators", "ops"));
        await RunsAsync(server, erin, inventory, "deploy-key");

        var frank = server.BearerClient(idp.OktaToken("00u-frank", "frank", "ops-operators", "dev"));
        var detail = await Problem.AssertAsync(await SubmitAsync(frank, inventory, "deploy-key"), HttpStatusCode.Forbidden);
        Assert.Equal("credential 'deploy-key' may be used by role admin, keys [ci], groups [ops]; frank has role operator and groups [ops-operators, dev]", detail);

        // A key name matches API keys only: an OIDC user called "ci" is not the key "ci".
        var impostor = server.BearerClient(idp.OktaToken("00u-ci", "ci", "ops-operators"));
        detail = await Problem.AssertAsync(await SubmitAsync(impostor, inventory, "deploy-key"), HttpStatusCode.Forbidden);
        Assert.StartsWith("credential 'deploy-key' may be used by", detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Bad_use_rules_are_a_400_naming_the_field_and_store_nothing(Provider provider)
    {
        using var keys = new TempDir();
        await using var server = await OpsgateServer.StartAsync(provider);
        var secret = await SshTarget.NewKeyAsync(keys);
        var tooMany = Enumerable.Range(0, 65).Select(i => $"k{i}").ToArray();
        foreach (var (use, field) in new (object Use, string Field)[]
                 {
                     (new { min_role = "root" }, "use.min_role"),
                     (new { min_role = "" }, "use.min_role"),
                     (new { keys = new[] { "has space" } }, "use.keys"),
                     (new { keys = new[] { "-dash" } }, "use.keys"),
                     (new { keys = new[] { new string('k', 64) } }, "use.keys"),
                     (new { keys = new string?[] { null } }, "use.keys"),
                     (new { keys = tooMany }, "use.keys"),
                     (new { groups = new[] { "ops\nadmins" } }, "use.groups"),
                     (new { groups = new[] { "" } }, "use.groups"),
                     (new { groups = new[] { new string('g', 257) } }, "use.groups"),
                     (new { groups = tooMany }, "use.groups"),
                 })
        {
            var response = await server.Admin.PostAsJsonAsync("/api/v1/credentials", new { name = "bad", kind = "ssh_key", secret, use }, OpsgateServer.Json);
            var detail = await Problem.AssertAsync(response, HttpStatusCode.BadRequest);
            Assert.StartsWith(field + ":", detail, StringComparison.Ordinal);
        }
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/credentials")).GetProperty("items").EnumerateArray());

        // The longest allowed values are fine; an omitted field keeps its default.
        var ok = await server.Admin.PostAsJsonAsync("/api/v1/credentials",
            new { name = "edge", kind = "ssh_key", secret, use = new { keys = new[] { new string('k', 63) }, groups = new[] { new string('g', 256) } } }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        var created = await ok.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("operator", created.GetProperty("use").GetProperty("min_role").GetString());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_project_whose_credential_the_caller_may_not_use_is_neither_synced_nor_run_by_it(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", Site));
        using var keys = new TempDir();
        await using var server = await OpsgateServer.StartAsync(provider, [repo.AllowArg]);
        await CreateCredentialAsync(server, keys, "forge", new { min_role = "admin" });
        var created = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "site", git_repo = repo.Bare, @ref = "main" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        // A local repository takes no credential through the API; an ssh or https one would need a remote here. The
        // check happens before git runs, so the project is given one behind the API's back.
        await using (var db = await server.OpenDatabaseAsync())
        {
            Assert.Equal(1, await db.ExecuteAsync("UPDATE projects SET credential = 'forge' WHERE name = 'site'"));
        }
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var operatorClient = server.Client((await server.CreateKeyAsync("deployer", "operator")).Key);
        const string Refusal = "project 'site' fetches with credential 'forge', which may be used by role admin, keys [], groups []; deployer has role operator";

        Assert.Equal(Refusal, await Problem.AssertAsync(await operatorClient.PostAsync("/api/v1/projects/site/sync", null), HttpStatusCode.Forbidden));
        var before = await JobCountAsync(server);
        var submit = await operatorClient.PostAsJsonAsync("/api/v1/jobs",
            new { type = "ansible-playbook", @params = new { project = "site", playbook = "site.yml", inventory } }, OpsgateServer.Json);
        Assert.Equal(Refusal, await Problem.AssertAsync(submit, HttpStatusCode.Forbidden));
        Assert.Equal(before, await JobCountAsync(server));

        // Nor is an inventory read from it: storing one sourced from the project fetches it too.
        var sourced = await operatorClient.PostAsJsonAsync("/api/v1/inventories",
            new { name = "from-site", source = new { project = "site", path = "site.yml" } }, OpsgateServer.Json);
        Assert.Equal(Refusal, await Problem.AssertAsync(sourced, HttpStatusCode.Forbidden));
    }
}
