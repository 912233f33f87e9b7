using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Opsgate.Server.Tests.Ansible;
using Opsgate.Server.Tests.Engine;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Auth;

/// <summary>
/// Marker secrets (a secret parameter, an extra var, an inventory var, a credential) are put through a server whose
/// jobs use them; then every GET route of the OpenAPI document is read with every role, and the markers are looked
/// for in the answers, in everything the server logged and in every row of its database: found nowhere, while the
/// playbook and the HTTP step did get the values.
/// </summary>
public sealed class SecretMarkerTests
{
    private const string ParamMarker = "marker-param-5d1c0e";
    private const string ExtraMarker = "marker-extra-8a44f2";
    private const string InventoryMarker = "marker-inventory-93be17";
    private const string CredentialMarker = "marker-credential-2f6d0a";
    /// <summary>An extra var Python's JSON escapes (a quote, non-ASCII): masked in the callback's JSON text too. Searched for by its plain middle.</summary>
    private const string EscapedValue = "ünï-\"marker-escaped-77c1e9\"-ß";
    private const string EscapedMarker = "marker-escaped-77c1e9";
    /// <summary>A secret parameter passed to a sharded run under a name that does not look secret: its shards must not show it either.</summary>
    private const string ShardMarker = "marker-shard-4e0b6d";
    private static readonly string[] Markers = [ParamMarker, ExtraMarker, InventoryMarker, CredentialMarker, EscapedMarker, ShardMarker];

    private const string Runbook = """
        name: call-with-token
        parameters:
          - {name: url, type: string, required: true}
          - {name: token, type: string, required: true, secret: true}
        steps:
          - name: call
            kind: http.call
            with: {url: "{{ params.url }}", headers: {X-Token: "{{ params.token }}"}}
        """;

    private const string ShardRunbook = """
        name: sharded-with-secret
        parameters:
          - {name: inventory, type: string, required: true}
          - {name: pw, type: string, required: true, secret: true}
        steps:
          - name: run
            kind: ansible.run
            with: {playbook: shard.yml, inventory: "{{ params.inventory }}", extra_vars: {db_pw: "{{ params.pw }}"}, shards: 2}
        """;

    private const string ShardPlaybook = $$"""
        - hosts: all
          gather_facts: false
          tasks:
            - assert: {that: ['db_pw == "{{ShardMarker}}"'], quiet: true}
            - debug: {var: db_pw}
        """;

    private const string Playbook = $$"""
        - hosts: all
          gather_facts: false
          tasks:
            - name: the values reached ansible
              assert:
                that:
                  - db_password == "{{ExtraMarker}}"
                  - db_admin_password == "{{InventoryMarker}}"
                quiet: true
            - name: a careless playbook prints them
              debug: {var: db_password}
            - debug: {var: api_token}
        """;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Marker_secrets_are_in_no_response_no_log_line_and_no_row(Provider provider)
    {
        using var playbooks = new TempDir();
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(playbooks.Path, "site.yml"), Playbook);
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "call.yaml"), Runbook);
        await File.WriteAllTextAsync(Path.Combine(playbooks.Path, "shard.yml"), ShardPlaybook);
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "sharded.yaml"), ShardRunbook);
        var tokens = new ConcurrentBag<string>();
        await using var stub = await StubHttpServer.StartAsync((ctx, _) =>
        {
            tokens.Add(ctx.Request.Headers["X-Token"].ToString());
            return ctx.Response.WriteAsync("ok");
        });
        var logs = new CapturedLogs();
        await using var server = await OpsgateServer.StartAsync(provider,
            [$"--Ansible:PlaybookDirectory={playbooks.Path}", $"--Jobs:RunbookDirectory={runbooks.Path}", "--Logging:LogLevel:Default=Debug"],
            logs.AddTo);
        var admin = server.Admin;

        var credential = await admin.PostAsJsonAsync("/api/v1/credentials",
            new { name = "deploy", kind = "password", username = "deployer", secret = CredentialMarker }, OpsgateServer.Json);
        Assert.True(credential.IsSuccessStatusCode, await credential.Content.ReadAsStringAsync());
        var inventory = await AnsibleFixture.StoreInventoryAsync(admin,
            $"all:\n  vars: {{{AnsibleFixture.LocalVars}, db_admin_password: {InventoryMarker}}}\n  hosts:\n    web1:\n", "marked");
        var ansibleJob = await TestJobs.SubmitAsync(admin, "ansible-playbook", new { playbook = "site.yml", inventory, extra_vars = new { db_password = ExtraMarker, api_token = EscapedValue } });
        var httpJob = await TestJobs.SubmitAsync(admin, "call-with-token", new { url = $"{stub.BaseAddress}hook", token = ParamMarker });
        var ran = await TestJobs.WaitAsync(admin, ansibleJob, timeout: TimeSpan.FromMinutes(2));
        Assert.True(ran.Status() == "succeeded", ran.ToString()); // the assert task passed: ansible had the real values
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(admin, httpJob)).Status());
        var twoHosts = await AnsibleFixture.StoreInventoryAsync(admin, AnsibleFixture.Inventory(["web1", "web2"]), "two");
        var shardedJob = await TestJobs.SubmitAsync(admin, "sharded-with-secret", new { inventory = twoHosts, pw = ShardMarker });
        var sharded = await TestJobs.WaitAsync(admin, shardedJob, timeout: TimeSpan.FromMinutes(2));
        Assert.True(sharded.Status() == "succeeded", sharded.ToString()); // each shard's assert passed: it had the value
        var shards = sharded.GetProperty("children").EnumerateArray().Select(c => c.GetProperty("job_id").GetString()!).ToList();
        Assert.Equal(2, shards.Count);
        Assert.Equal([ParamMarker], tokens);

        var clients = new Dictionary<string, HttpClient> { ["admin"] = admin };
        foreach (var role in new[] { "viewer", "operator", "approver" })
            clients[role] = server.Client((await server.CreateKeyAsync($"reader-{role}", role)).Key);
        var doc = await Http.OpenApiTests.DocumentAsync(server);
        var reads = 0;
        foreach (var (path, item) in doc["paths"]!.AsObject())
        {
            if (item!["get"] is null || path.EndsWith("/events/ws", StringComparison.Ordinal))
                continue;
            var urls = path.Contains("{id}", StringComparison.Ordinal)
                ? new[] { ansibleJob, httpJob, shardedJob }.Concat(shards).Select(id => path.Replace("{id}", id)).ToList()
                : [path];
            urls = urls.Select(u => u.Replace("{ref}", "marked").Replace("{idOrName}", "none").Replace("{name}", "none")
                .Replace("{cluster}", "none").Replace("{namespace}", "default")).ToList();
            foreach (var url in urls)
            {
                foreach (var (role, client) in clients)
                {
                    var text = await client.GetStringWithoutThrowingAsync(url);
                    foreach (var marker in Markers)
                        Assert.False(text.Contains(marker, StringComparison.Ordinal), $"GET {url} as {role} shows {marker}: {text}");
                    reads++;
                }
            }
        }
        Assert.True(reads > 60, $"only {reads} reads");

        var logged = string.Join('\n', logs.Entries.Select(e => e.Message));
        Assert.True(logs.Entries.Count > 10, "the server logged next to nothing: the log was not captured");
        foreach (var marker in Markers)
            Assert.False(logged.Contains(marker, StringComparison.Ordinal), $"the server log shows {marker}");
        var dump = await SecretParameterTests.DumpAsync(server);
        foreach (var marker in Markers)
            Assert.False(dump.Contains(marker, StringComparison.Ordinal), $"the database holds {marker} in the clear");
    }
}

internal static class ReadingExtensions
{
    /// <summary>The body of any answer, error or not: a refusal's text must not leak a secret either.</summary>
    public static async Task<string> GetStringWithoutThrowingAsync(this HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
    }
}
