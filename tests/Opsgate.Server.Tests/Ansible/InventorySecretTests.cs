using System.Data.Common;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Opsgate.Server.Ansible;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// Secret inventory variables: no role sees them, the database holds only ciphertext, ansible gets the values;
/// versions stored before are sealed at start-up.
/// </summary>
public sealed class InventorySecretTests
{
    private const string Redacted = "[REDACTED]";

    // Writes what each host got into a file the test reads back: the playbook itself names no value.
    private const string Reveal = """
        - hosts: all
          gather_facts: false
          tasks:
            - copy:
                dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
                mode: "0600"
                content: "{{ ansible_password | default('-') }}|{{ ansible_become_pass }}|{{ db_token }}|{{ corp_door_pin }}|{{ vault_settings.key | default('-') }}|{{ api_token }}|{{ api_token is number }}"
        """;

    /// <summary>Marker values, each unique to one test run, so a search for them finds only leaks.</summary>
    private sealed record Markers(string HostPassword, string BecomePass, string DbToken, string DoorPin, string VaultKey, long ApiToken)
    {
        public static Markers New()
        {
            string M(string what) => $"{what}-{Guid.NewGuid():N}";
            return new(M("hostpw"), M("become"), M("dbtoken"), M("doorpin"), M("vaultkey"), 900_000_000_000 + Random.Shared.NextInt64(99_999_999_999));
        }

        public IReadOnlyList<string> All => [HostPassword, BecomePass, DbToken, DoorPin, VaultKey, ApiToken.ToString(System.Globalization.CultureInfo.InvariantCulture)];

        /// <summary>
        /// Host vars (a string, a structure), group vars at every depth (all's number, db's token two groups down) in
        /// hosts; vars adds a group var of all and one named by Secrets:SecretVariableNames.
        /// </summary>
        public string Hosts => $$"""
            all:
              vars:
                {{LocalVars.Replace(", ", "\n    ", StringComparison.Ordinal)}}
                api_token: {{ApiToken}}
                greeting: hello
              children:
                prod:
                  children:
                    db:
                      vars:
                        db_token: "{{DbToken}}"
                      hosts:
                        h1:
                          ansible_password: "{{HostPassword}}"
                        h2:
                          vault_settings: {key: "{{VaultKey}}", port: 5432}
            """;

        public string VarsYaml => $"all:\n  ansible_become_pass: \"{BecomePass}\"\ndb:\n  corp_door_pin: \"{DoorPin}\"\n";

        public object VarsJson => new Dictionary<string, object> { ["all"] = new { ansible_become_pass = BecomePass }, ["db"] = new { corp_door_pin = DoorPin } };

        public string Expected(string host) =>
            $"{(host == "h1" ? HostPassword : "-")}|{BecomePass}|{DbToken}|{DoorPin}|{(host == "h2" ? VaultKey : "-")}|{ApiToken}|True";

        public void AssertAbsent(string text, string where)
        {
            foreach (var marker in All)
                Assert.False(text.Contains(marker, StringComparison.Ordinal), $"a secret value ({marker[..Math.Min(8, marker.Length)]}...) is in {where}");
        }
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Secret_inventory_variables_are_shown_to_no_role_and_stored_encrypted_yet_ansible_gets_them(Provider provider)
    {
        using var playbooks = new TempDir();
        using var output = new TempDir();
        await using var server = await StartAsync(provider, playbooks, ["--Secrets:SecretVariableNames=corp_*_pin"], ("reveal.yml", Reveal));
        var markers = Markers.New();
        var viewer = server.Client((await server.CreateKeyAsync("look", "viewer")).Key);
        var operatorClient = server.Client((await server.CreateKeyAsync("ops", "operator")).Key);

        // hosts as YAML text, vars as a JSON object.
        var created = await operatorClient.PostAsJsonAsync("/api/v1/inventories", new { name = "vault", hosts = markers.Hosts, vars = markers.VarsJson }, OpsgateServer.Json);
        var createdBody = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, createdBody);
        markers.AssertAbsent(createdBody, "the create response");

        var detail = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/vault");
        var hostsText = detail.GetProperty("hosts").GetString()!;
        var varsText = detail.GetProperty("vars").GetString()!;
        Assert.Equal(4, CountOf(hostsText, Redacted)); // api_token, db_token, ansible_password, vault_settings (whole), and nothing else
        Assert.Contains("ansible_connection: local", hostsText, StringComparison.Ordinal);
        Assert.Contains("greeting: hello", hostsText, StringComparison.Ordinal);
        Assert.Equal(2, CountOf(varsText, Redacted));
        Assert.Equal(2, detail.GetProperty("host_count").GetInt32());

        // Posting what a GET showed would store the placeholder as a password: refused.
        var echoed = await operatorClient.PostAsJsonAsync("/api/v1/inventories", new { name = "vault", hosts = hostsText }, OpsgateServer.Json);
        Assert.Contains("placeholder shown for a secret value", await Problem.AssertAsync(echoed, HttpStatusCode.BadRequest), StringComparison.Ordinal);

        // One run, and a run in two shards (each shard's inventory is in its job's parameters: placeholders only).
        var single = await TestJobs.SubmitAsync(operatorClient, "ansible-playbook", new { playbook = "reveal.yml", inventory = "vault", extra_vars = new { out_dir = output.Path } });
        await AssertRevealedAsync(server, single, output.Path, markers);
        var shardDir = Directory.CreateDirectory(Path.Combine(output.Path, "shards")).FullName;
        var sharded = await TestJobs.SubmitAsync(operatorClient, "ansible-playbook", new { playbook = "reveal.yml", inventory = "vault", shards = 2, extra_vars = new { out_dir = shardDir } });
        await AssertRevealedAsync(server, sharded, shardDir, markers);

        foreach (var (role, client) in new[] { ("viewer", viewer), ("operator", operatorClient), ("admin", server.Admin) })
        {
            foreach (var url in new[]
            {
                "/api/v1/inventories", "/api/v1/inventories/vault", "/api/v1/inventories/vault?version=1", "/api/v1/inventories/vault/versions",
                "/api/v1/inventories/vault/hosts", "/api/v1/jobs?limit=500", $"/api/v1/jobs/{single}", $"/api/v1/jobs/{single}/hosts",
                $"/api/v1/jobs/{sharded}", $"/api/v1/jobs/{sharded}/hosts", "/api/v1/audit?limit=200",
            })
            {
                var response = await client.GetAsync(url);
                Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Forbidden, $"{role} GET {url}: {(int)response.StatusCode}");
                markers.AssertAbsent(await response.Content.ReadAsStringAsync(), $"{role}'s GET {url}");
            }
            foreach (var job in new[] { single, sharded })
                markers.AssertAbsent(string.Join('\n', (await ReadEventsAsync(client, job)).Select(e => e.Data.GetRawText())), $"{role}'s events of {job}");
        }

        await using (var connection = await server.OpenDatabaseAsync())
        {
            foreach (var (table, column, text) in await DumpAsync(connection, provider))
                markers.AssertAbsent(text, $"{table}.{column}");
            var stored = (await connection.QueryAsync<string>("SELECT value FROM secrets WHERE name LIKE 'inventory/%'")).ToList();
            Assert.Single(stored);
            Assert.StartsWith("aesgcm1:", stored[0], StringComparison.Ordinal);
        }

        // Deleting the inventory deletes its secret.
        Assert.Equal(HttpStatusCode.NoContent, (await operatorClient.DeleteAsync("/api/v1/inventories/vault")).StatusCode);
        await using (var connection = await server.OpenDatabaseAsync())
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM secrets WHERE name LIKE 'inventory/%'"));
    }

    [Fact]
    public async Task A_run_whose_secret_values_are_gone_fails_with_the_reason_and_ansible_never_sees_the_placeholder()
    {
        using var playbooks = new TempDir();
        using var output = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ["--Secrets:SecretVariableNames=corp_*_pin"], ("reveal.yml", Reveal));
        var markers = Markers.New();
        await StoreInventoryAsync(server.Admin, markers.Hosts, "lost", markers.VarsYaml);
        string secretName;
        await using (var connection = await server.OpenDatabaseAsync())
            secretName = (await connection.ExecuteScalarAsync<string>("SELECT secret_name FROM inventory_versions"))!;

        // A job submitted by hand cannot borrow a version's secret values for an inventory of its own.
        var redacted = (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/lost")).GetProperty("hosts").GetString();
        var borrowed = await TestJobs.SubmitAsync(server.Admin, "ansible-shard",
            new { playbook = "reveal.yml", inventory = redacted, inventory_secrets = secretName, extra_vars = new { out_dir = output.Path } });
        var refused = await TestJobs.WaitAsync(server.Admin, borrowed, timeout: TimeSpan.FromSeconds(120));
        Assert.True(refused.Status() == "failed", refused.ToString());
        Assert.Contains("inventory_secrets is only for the shards of a sharded run", refused.GetProperty("error").GetString(), StringComparison.Ordinal);

        // The secret store restored from a backup older than the database.
        await using (var connection = await server.OpenDatabaseAsync())
            Assert.Equal(1, await connection.ExecuteAsync("DELETE FROM secrets WHERE name LIKE 'inventory/%'"));

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "reveal.yml", inventory = "lost", extra_vars = new { out_dir = output.Path } });
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(120));
        Assert.True(job.Status() == "failed", job.ToString());
        var error = job.GetProperty("error").GetString()!;
        Assert.Contains("inventory 'lost' version '1'", error, StringComparison.Ordinal);
        Assert.Contains("missing from the secret store", error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(output.Path));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_version_stored_in_plaintext_before_is_sealed_at_start_up_and_runs_as_before(Provider provider)
    {
        using var data = new TempDir();
        using var playbooks = new TempDir();
        using var output = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(playbooks.Path, "reveal.yml"), Reveal);
        await using var postgres = provider == Provider.Postgres ? await PostgresDatabase.CreateAsync() : null;
        string[] args =
        [
            $"--DataDir={data.Path}", $"--Ansible:PlaybookDirectory={playbooks.Path}", "--Secrets:SecretVariableNames=corp_*_pin",
            .. postgres is null ? Array.Empty<string>() : ["--Database:Provider=postgres", $"--Database:ConnectionString={postgres.ConnectionString}"],
        ];
        var markers = Markers.New();

        await using (var before = await OpsgateServer.StartAsync(Provider.Sqlite, args))
        {
            await StoreInventoryAsync(before.Admin, markers.Hosts, "legacy", markers.VarsYaml);
            // The row as a server before sealing wrote it: the texts as sent and expanded, no secret.
            var inventory = InventoryYaml.Merge(markers.Hosts, markers.VarsYaml);
            var expanded = await before.App.Services.GetRequiredService<InventoryExpander>().ExpandAsync(inventory, CancellationToken.None);
            await using var connection = await before.OpenDatabaseAsync();
            Assert.Equal(1, await connection.ExecuteAsync("DELETE FROM secrets WHERE name LIKE 'inventory/%'"));
            Assert.Equal(1, await connection.ExecuteAsync(
                "UPDATE inventory_versions SET hosts = @hosts, vars = @vars, inventory = @inventory, expanded = @expanded, secret_name = NULL, secrets_sealed = 0",
                new { hosts = markers.Hosts, vars = markers.VarsYaml, inventory, expanded = expanded.List.ToJsonString() }));
            Assert.Contains(await DumpAsync(connection, provider), c => c.Text.Contains(markers.HostPassword, StringComparison.Ordinal));
        }

        await using (var after = await OpsgateServer.StartAsync(Provider.Sqlite, args))
        {
            await using (var connection = await after.OpenDatabaseAsync())
            {
                foreach (var (table, column, text) in await DumpAsync(connection, provider))
                    markers.AssertAbsent(text, $"{table}.{column}");
                Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT secrets_sealed FROM inventory_versions"));
                Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM secrets WHERE name LIKE 'inventory/%'"));
            }
            var detail = await after.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/legacy");
            Assert.Equal(4, CountOf(detail.GetProperty("hosts").GetString()!, Redacted));
            Assert.Equal(2, CountOf(detail.GetProperty("vars").GetString()!, Redacted));
            var id = await TestJobs.SubmitAsync(after.Admin, "ansible-playbook", new { playbook = "reveal.yml", inventory = "legacy", extra_vars = new { out_dir = output.Path } });
            await AssertRevealedAsync(after, id, output.Path, markers);
        }

        // Once sealed, a start finds nothing to do.
        await using (var again = await OpsgateServer.StartAsync(Provider.Sqlite, args))
        {
            await using var connection = await again.OpenDatabaseAsync();
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM secrets WHERE name LIKE 'inventory/%'"));
        }
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_sourced_inventory_is_sealed_too_and_a_sync_that_only_rotates_a_password_stores_a_new_version(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        using var playbooks = new TempDir();
        using var output = new TempDir();
        string Inventory(string password) =>
            $"all:\n  vars: {{{LocalVars}}}\n  hosts:\n    s1: {{ansible_password: \"{password}\", role: app}}\n";
        var (first, second) = ($"first-{Guid.NewGuid():N}", $"second-{Guid.NewGuid():N}");
        await repo.CommitAsync("one", ("inventory/hosts.yml", Inventory(first)));
        await using var server = await StartAsync(provider, playbooks, [repo.AllowArg], ("pw.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - copy: {dest: "{{ out_dir }}/{{ inventory_hostname }}.txt", mode: "0600", content: "{{ ansible_password }} {{ role }}"}
            """));
        var project = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "cmdb", git_repo = repo.Bare }, OpsgateServer.Json);
        Assert.True(project.StatusCode == HttpStatusCode.Created, await project.Content.ReadAsStringAsync());
        var created = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "dyn", source = new { project = "cmdb", path = "inventory/hosts.yml" } }, OpsgateServer.Json);
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var detail = await server.Admin.GetStringAsync("/api/v1/inventories/dyn");
        Assert.DoesNotContain(first, detail, StringComparison.Ordinal);
        Assert.Contains(Redacted, detail, StringComparison.Ordinal);

        async Task<JsonElement> SyncAsync()
        {
            var response = await server.Admin.PostAsync("/api/v1/inventories/dyn/sync", null);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            return JsonDocument.Parse(body).RootElement.Clone();
        }
        Assert.False((await SyncAsync()).GetProperty("changed").GetBoolean());
        // Only the password changed: the stored expansions are equal ([REDACTED] both), the values are not.
        await repo.CommitAsync("rotate", ("inventory/hosts.yml", Inventory(second)));
        var rotated = await SyncAsync();
        Assert.True(rotated.GetProperty("changed").GetBoolean(), rotated.ToString());
        Assert.Equal("2", rotated.GetProperty("inventory").GetProperty("version").GetString());

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "pw.yml", inventory = "dyn", extra_vars = new { out_dir = output.Path } });
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromMinutes(3));
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal($"{second} app", await File.ReadAllTextAsync(Path.Combine(output.Path, "s1.txt")));
        await using var connection = await server.OpenDatabaseAsync();
        Assert.DoesNotContain(await DumpAsync(connection, provider), c => c.Text.Contains(first, StringComparison.Ordinal) || c.Text.Contains(second, StringComparison.Ordinal));
    }

    /// <summary>The job succeeded and each host's file holds the real values.</summary>
    private static async Task AssertRevealedAsync(OpsgateServer server, string jobId, string dir, Markers markers)
    {
        var job = await TestJobs.WaitAsync(server.Admin, jobId, timeout: TimeSpan.FromMinutes(3));
        Assert.True(job.Status() == "succeeded", job.ToString());
        foreach (var host in new[] { "h1", "h2" })
            Assert.Equal(markers.Expected(host), await File.ReadAllTextAsync(Path.Combine(dir, host + ".txt")));
    }

    /// <summary>Every text value of every table, read directly (binary values as UTF-8).</summary>
    private static async Task<List<(string Table, string Column, string Text)>> DumpAsync(DbConnection connection, Provider provider)
    {
        var tables = (await connection.QueryAsync<string>(provider == Provider.Postgres
            ? "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            : "SELECT name FROM sqlite_master WHERE type = 'table'")).ToList();
        Assert.Contains("inventory_versions", tables);
        var found = new List<(string, string, string)>();
        foreach (var table in tables)
        {
            await using var command = connection.CreateCommand();
            // A table name cannot be a parameter; these come from the database's own catalog, quoted.
            command.CommandText = $"SELECT * FROM \"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    var text = reader.IsDBNull(i) ? null : reader.GetValue(i) switch
                    {
                        string s => s,
                        byte[] b => Encoding.UTF8.GetString(b),
                        var other => Convert.ToString(other, System.Globalization.CultureInfo.InvariantCulture),
                    };
                    if (text is not null)
                        found.Add((table, reader.GetName(i), text));
                }
            }
        }
        return found;
    }

    private static int CountOf(string text, string part)
    {
        var (count, at) = (0, 0);
        while ((at = text.IndexOf(part, at, StringComparison.Ordinal)) >= 0)
            (count, at) = (count + 1, at + part.Length);
        return count;
    }
}
