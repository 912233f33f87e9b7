using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>Stored inventories over the API: checked and expanded by the real ansible-inventory, versioned, used by playbook runs.</summary>
public sealed class InventoryTests
{
    // pansible.README.md's example, with a nested group.
    private const string Hosts = """
        all:
          hosts:
            localhost:
          children:
            webservers:
              hosts:
                foo.example[3:5].com:
            dbservers:
              hosts:
                one.example.com:
                two.example.com:
            prod:
              children:
                web:
                  hosts:
                    web[01:03].example.com:
        """;

    private const string Vars = """
        all:
          allkey1: allval1
        webservers:
          wskey1: wsval1
        """;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task An_inventory_is_stored_and_its_hosts_are_the_ones_ansible_expands(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var response = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "example", env = "alpha", version = "0.0.1", hosts = Hosts, vars = Vars }, OpsgateServer.Json);
        var created = await Created(response);
        Assert.Equal("example", created.GetProperty("name").GetString());
        Assert.Equal("alpha", created.GetProperty("env").GetString());
        Assert.Equal("0.0.1", created.GetProperty("version").GetString());
        Assert.Equal(9, created.GetProperty("host_count").GetInt32());
        Assert.Equal("bootstrap-admin", created.GetProperty("created_by").GetString());
        var id = created.GetProperty("id").GetInt64();

        var expected = await AnsibleHostsAsync(Hosts);
        var page = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/example/hosts");
        Assert.Equal(9, page.GetProperty("total").GetInt32());
        var hosts = page.GetProperty("items").EnumerateArray().ToDictionary(
            h => h.GetProperty("name").GetString()!, h => h.GetProperty("groups").EnumerateArray().Select(g => g.GetString()!).ToList());
        Assert.Equal(expected.Order(StringComparer.Ordinal), hosts.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["foo.example3.com", "foo.example4.com", "foo.example5.com"], hosts.Keys.Where(h => h.StartsWith("foo.", StringComparison.Ordinal)));
        Assert.Equal(["prod", "web"], hosts["web02.example.com"]);
        Assert.Equal(["webservers"], hosts["foo.example4.com"]);
        Assert.Empty(hosts["localhost"]);

        // Paged, in the same order; by id as by name.
        var second = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/inventories/{id}/hosts?limit=4&offset=4");
        Assert.Equal(page.GetProperty("items").EnumerateArray().Skip(4).Take(4).Select(h => h.GetProperty("name").GetString()),
            second.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("name").GetString()));

        // What was sent comes back as it was sent; the list has it at its latest version.
        var one = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/inventories/{id}");
        Assert.Equal(Hosts, one.GetProperty("hosts").GetString());
        Assert.Equal(Vars, one.GetProperty("vars").GetString());
        var list = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories");
        Assert.Equal(id, Assert.Single(list.GetProperty("items").EnumerateArray()).GetProperty("id").GetInt64());

        // hosts as a JSON object is the same YAML structure.
        var json = await Created(await server.Admin.PostAsJsonAsync("/api/v1/inventories", new
        {
            name = "from-json",
            hosts = new { all = new { children = new { web = new { hosts = new Dictionary<string, object?> { ["web[01:03].example.com"] = null, ["10.0.0.1"] = new { ansible_port = 2222 } } } } } },
            vars = new { web = new { http_port = "8080", enabled = "yes" } },
        }, OpsgateServer.Json));
        Assert.Equal(4, json.GetProperty("host_count").GetInt32());
        var jsonHosts = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/from-json/hosts");
        Assert.Equal(["10.0.0.1", "web01.example.com", "web02.example.com", "web03.example.com"],
            jsonHosts.GetProperty("items").EnumerateArray().Select(h => h.GetProperty("name").GetString()).Order(StringComparer.Ordinal));
        Assert.Contains("web[01:03].example.com", (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/from-json")).GetProperty("hosts").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Posting_a_name_again_adds_a_version_and_old_versions_stay_readable(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var v1 = await Created(await Post(server.Admin, "fleet", "all:\n  hosts:\n    a:\n    b:\n"));
        var v2 = await Created(await Post(server.Admin, "fleet", "all:\n  hosts:\n    c:\n"));
        Assert.Equal(("1", "2"), (v1.GetProperty("version").GetString(), v2.GetProperty("version").GetString()));
        Assert.Equal(v1.GetProperty("id").GetInt64(), v2.GetProperty("id").GetInt64());

        Assert.Equal(1, (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/fleet")).GetProperty("host_count").GetInt32());
        Assert.Equal(2, (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/fleet?version=1")).GetProperty("host_count").GetInt32());
        Assert.Equal(["a", "b"], await HostNamesAsync(server.Admin, "/api/v1/inventories/fleet/hosts?version=1"));
        Assert.Equal(["c"], await HostNamesAsync(server.Admin, "/api/v1/inventories/fleet/hosts"));

        var labelled = await Created(await Post(server.Admin, "fleet", "all:\n  hosts:\n    d:\n", version: "2026.11"));
        Assert.Equal("2026.11", labelled.GetProperty("version").GetString());
        var versions = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/fleet/versions");
        Assert.Equal(["1", "2", "2026.11"], versions.GetProperty("items").EnumerateArray().Select(v => v.GetProperty("version").GetString()));
        var latest = Assert.Single((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories")).GetProperty("items").EnumerateArray());
        Assert.Equal("2026.11", latest.GetProperty("version").GetString());

        Assert.Contains("already has version '2026.11'", await Problem.AssertAsync(await Post(server.Admin, "fleet", "all:\n  hosts:\n    e:\n", version: "2026.11"), HttpStatusCode.Conflict), StringComparison.Ordinal);
        Assert.Contains("already has version '1'", await Problem.AssertAsync(await Post(server.Admin, "fleet", "all:\n  hosts:\n    e:\n", version: "1"), HttpStatusCode.Conflict), StringComparison.Ordinal);
        Assert.Equal(3, versions.GetProperty("items").GetArrayLength());

        Assert.Contains("inventory 'nope' does not exist", await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/nope"), HttpStatusCode.NotFound), StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/9999/hosts"), HttpStatusCode.NotFound);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/nope/versions"), HttpStatusCode.NotFound);
        Assert.Contains("no version '7'", await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/fleet?version=7"), HttpStatusCode.NotFound), StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/fleet/hosts?limit=0"), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/Bad_Name"), HttpStatusCode.BadRequest);

        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/inventories/fleet")).StatusCode);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/fleet?version=1"), HttpStatusCode.NotFound);
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/inventories/fleet"), HttpStatusCode.NotFound);
        // A new inventory of the same name starts again at 1, with a new id: jobs that named the old id never reach it.
        var again = await Created(await Post(server.Admin, "fleet", "all:\n  hosts:\n    z:\n"));
        Assert.Equal("1", again.GetProperty("version").GetString());
        Assert.NotEqual(v1.GetProperty("id").GetInt64(), again.GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task An_inventory_that_is_not_yaml_or_that_ansible_cannot_read_is_refused_with_the_reason()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);

        var yaml = await Problem.AssertAsync(await Post(server.Admin, "broken", "all:\n  hosts:\n    a: [unclosed\n    b:\n"), HttpStatusCode.BadRequest);
        Assert.Matches(@"^hosts: not valid YAML at line 4, column \d+", yaml);
        var nested = await Problem.AssertAsync(await Post(server.Admin, "broken", "all:\n  hosts:\n    a: b: c\n"), HttpStatusCode.BadRequest);
        Assert.StartsWith("hosts: not valid YAML at line 3, column 9: ", nested, StringComparison.Ordinal);
        var badVars = await Problem.AssertAsync(await Post(server.Admin, "broken", "all:\n  hosts:\n    a:\n", vars: "all:\n  x: 1\n y: 2\n"), HttpStatusCode.BadRequest);
        Assert.StartsWith("vars: not valid YAML at line 3", badVars, StringComparison.Ordinal);

        // Well-formed YAML that is no inventory: ansible's own reason.
        var ansible = await Problem.AssertAsync(await Post(server.Admin, "broken", "all:\n  hosts: [a, b]\n"), HttpStatusCode.BadRequest);
        Assert.Contains("ansible-inventory cannot read the inventory", ansible, StringComparison.Ordinal);
        Assert.Contains("Invalid \"hosts\" entry for \"all\" group", ansible, StringComparison.Ordinal);

        Assert.Contains("is not a group in hosts", await Problem.AssertAsync(await Post(server.Admin, "broken", "all:\n  hosts:\n    a:\n", vars: "dbservers:\n  x: 1\n"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("must be a mapping of groups", await Problem.AssertAsync(await Post(server.Admin, "broken", "- a\n- b\n"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("hosts: is empty", await Problem.AssertAsync(await Post(server.Admin, "broken", ""), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("aliases", await Problem.AssertAsync(await Post(server.Admin, "broken", "all:\n  vars: &v {a: 1}\n  children:\n    g: {vars: *v}\n"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.StartsWith("name:", await Problem.AssertAsync(await Post(server.Admin, "Not_A_Name", "all: {}\n"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.StartsWith("name:", await Problem.AssertAsync(await Post(server.Admin, "12345", "all: {}\n"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.StartsWith("version:", await Problem.AssertAsync(await Post(server.Admin, "fine", "all: {}\n", version: "../1"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        var noHosts = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "fine" }, OpsgateServer.Json);
        Assert.Contains("'hosts'", await Problem.AssertAsync(noHosts, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        var number = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "fine", hosts = 5 }, OpsgateServer.Json);
        Assert.StartsWith("hosts: must be Ansible YAML text or a JSON object", await Problem.AssertAsync(number, HttpStatusCode.BadRequest), StringComparison.Ordinal);

        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task An_INI_inventory_is_refused_saying_YAML_is_needed_and_a_bad_host_range_names_its_line()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);

        var ini = await Problem.AssertAsync(await Post(server.Admin, "from-ini", "# fleet\n[web]\nweb1 ansible_host=10.0.0.1\nweb2\n\n[db]\ndb1\n"), HttpStatusCode.BadRequest);
        Assert.StartsWith("hosts: line 2 ('[web]') reads as an INI inventory, but hosts must be Ansible YAML", ini, StringComparison.Ordinal);
        Assert.Contains("ansible-inventory -i FILE --list --yaml", ini, StringComparison.Ordinal);
        var hostLine = await Problem.AssertAsync(await Post(server.Admin, "from-ini", "web1 ansible_host=10.0.0.1 ansible_port=2222\n"), HttpStatusCode.BadRequest);
        Assert.StartsWith("hosts: line 1 ('web1 ansible_host=10.0.0.1 ansible_port=2222') reads as an INI inventory", hostLine, StringComparison.Ordinal);

        foreach (var (range, why) in new[]
        {
            ("web[a:]", "has a range without an end"),
            ("web[1:3:0]", "has a range whose step is not a whole number above 0"),
            ("web[01:3]", "has a zero-padded range whose begin and end differ in length"),
            ("web[1:c]", "has a range whose begin and end are not both numbers or both single letters"),
        })
        {
            var detail = await Problem.AssertAsync(
                await Post(server.Admin, "ranges", $"all:\n  children:\n    web:\n      hosts:\n        ok1:\n        \"{range}\":\n"), HttpStatusCode.BadRequest);
            Assert.Equal($"hosts: line 6, column 9: host '{range}' {why}", detail);
        }
        // A good range is stored as ansible expands it.
        Assert.Equal(HttpStatusCode.Created, (await Post(server.Admin, "ranges", "all:\n  hosts:\n    web[01:03]:\n")).StatusCode);
        Assert.Equal(3, (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/ranges/hosts")).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task A_viewer_reads_inventories_an_operator_stores_and_deletes_them_and_the_audit_log_never_holds_their_contents()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var viewer = server.Client((await server.CreateKeyAsync("look", "viewer")).Key);
        var operatorClient = server.Client((await server.CreateKeyAsync("ops", "operator")).Key);

        Assert.Equal(HttpStatusCode.Forbidden, (await Post(viewer, "secret", "all:\n  hosts:\n    a:\n")).StatusCode);
        const string hosts = "all:\n  hosts:\n    a: {ansible_password: hunter2-host}\n";
        await Created(await Post(operatorClient, "secret", hosts, vars: "all:\n  ansible_become_password: hunter2-vars\n"));
        Assert.Equal(1, (await viewer.GetFromJsonAsync<JsonElement>("/api/v1/inventories/secret")).GetProperty("host_count").GetInt32());
        Assert.Equal(["a"], await HostNamesAsync(viewer, "/api/v1/inventories/secret/hosts"));
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.DeleteAsync("/api/v1/inventories/secret")).StatusCode);

        // ansible quotes a bad value in its message: the caller sees it, the audit log does not.
        var echoed = await Problem.AssertAsync(await Post(operatorClient, "secret", "all:\n  hosts:\n    b: hunter2-echoed\n"), HttpStatusCode.BadRequest);
        Assert.Contains("hunter2-echoed", echoed, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, (await operatorClient.DeleteAsync("/api/v1/inventories/secret")).StatusCode);

        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=50");
        var entries = audit.GetProperty("items").EnumerateArray().Where(e => e.GetProperty("action").GetString()!.StartsWith("inventory.", StringComparison.Ordinal)).ToList();
        var create = entries.Single(e => e.GetProperty("action").GetString() == "inventory.create" && e.GetProperty("status").GetString() == "success");
        Assert.Equal("ops", create.GetProperty("actor").GetString());
        Assert.Equal("secret@1", create.GetProperty("resource_name").GetString());
        Assert.Equal("secret", create.GetProperty("request_body").GetProperty("name").GetString());
        Assert.False(create.GetProperty("request_body").TryGetProperty("hosts", out _));
        var refused = entries.Single(e => e.GetProperty("action").GetString() == "inventory.create" && e.GetProperty("http_status").GetInt32() == 400);
        Assert.Contains("ansible-inventory cannot read the inventory", refused.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "inventory.create" && e.GetProperty("status").GetString() == "denied");
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "inventory.delete" && e.GetProperty("http_status").GetInt32() == 204);
        Assert.DoesNotContain("hunter2", audit.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_job_naming_an_unknown_inventory_or_version_is_refused_at_submit_and_one_in_use_cannot_be_deleted()
    {
        using var playbooks = new TempDir();
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "approved.yaml"), """
            name: approved-playbook
            parameters:
              - {name: inventory, type: string, required: true}
            options: {requires_approval: true}
            steps:
              - name: playbook
                kind: ansible.run
                with: {playbook_yaml: "- hosts: all\n  tasks: []\n", inventory: "{{ params.inventory }}"}
            """);
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [$"--Jobs:RunbookDirectory={runbooks.Path}"], ("site.yml", "- hosts: all\n  tasks: []\n"));
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]), name: "known");

        var unknown = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { playbook = "site.yml", inventory = "unknown" } }, OpsgateServer.Json);
        Assert.Equal("steps.playbook.inventory: inventory 'unknown' does not exist", await Problem.AssertAsync(unknown, HttpStatusCode.BadRequest));
        var byId = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { playbook = "site.yml", inventory = "424242" } }, OpsgateServer.Json);
        Assert.Contains("inventory '424242' does not exist", await Problem.AssertAsync(byId, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        var version = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { playbook = "site.yml", inventory, inventory_version = "2" } }, OpsgateServer.Json);
        Assert.Equal("steps.playbook.inventory_version: inventory 'known' has no version '2'", await Problem.AssertAsync(version, HttpStatusCode.BadRequest));
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs")).GetProperty("items").EnumerateArray());

        // A job waiting for approval holds on to its inventory.
        var waiting = await TestJobs.SubmitAsync(server.Admin, "approved-playbook", new { inventory });
        var refused = await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/inventories/known"), HttpStatusCode.Conflict);
        Assert.Contains($"used by job {waiting}", refused, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{waiting}/cancel", null)).StatusCode);
        await TestJobs.WaitAsync(server.Admin, waiting);
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/inventories/known")).StatusCode);
    }

    [Fact]
    public async Task A_playbook_runs_over_a_stored_inventory_and_the_run_records_which_version_it_used()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("greet.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - debug: {msg: "{{ greeting }} {{ inventory_hostname }} in {{ group_names | join(',') }}"}
            """));
        var v1 = "all:\n  vars: {" + LocalVars + "}\n  children:\n    web:\n      hosts:\n        web[1:3]:\n";
        var name = await StoreInventoryAsync(server.Admin, v1, vars: new { all = new { greeting = "hello" }, web = new { greeting = "hi" } });
        await StoreInventoryAsync(server.Admin, "all:\n  vars: {" + LocalVars + ", greeting: hey}\n  hosts:\n    other:\n", name);

        var latest = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "greet.yml", inventory = name });
        var pinned = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "greet.yml", inventory = name, inventory_version = "1" });

        var job = await TestJobs.WaitAsync(server.Admin, pinned, timeout: TimeSpan.FromSeconds(60));
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.True(job.Step("playbook").GetProperty("output").TryGetProperty("inventory", out var used), job.ToString());
        Assert.Equal((name, "1", 3), (used.GetProperty("name").GetString(), used.GetProperty("version").GetString(), used.GetProperty("hosts").GetInt32()));
        var results = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{pinned}/hosts");
        Assert.Equal(["web1", "web2", "web3"], results.EnumerateObject().Select(p => p.Name));
        Assert.All(results.EnumerateObject(), h => Assert.Equal(1, h.Value.GetProperty("stats").GetProperty("ok").GetInt32()));
        var events = await ReadEventsAsync(server.Admin, pinned);
        // Group vars from vars: all's, and web's over all's for web's hosts.
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "hi web2 in web");
        var summary = events.Single(e => e.Type == "ansible.summary").Body.GetProperty("inventory");
        Assert.Equal(used.GetProperty("id").GetInt64(), summary.GetProperty("id").GetInt64());
        Assert.Equal("1", summary.GetProperty("version").GetString());

        job = await TestJobs.WaitAsync(server.Admin, latest, timeout: TimeSpan.FromSeconds(60));
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal("2", job.Step("playbook").GetProperty("output").GetProperty("inventory").GetProperty("version").GetString());
        Assert.Equal(["other"], (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{latest}/hosts")).EnumerateObject().Select(p => p.Name));
    }

    private static Task<HttpResponseMessage> Post(HttpClient client, string name, string hosts, string? vars = null, string? version = null) =>
        client.PostAsJsonAsync("/api/v1/inventories", new { name, hosts, vars, version }, OpsgateServer.Json);

    private static async Task<JsonElement> Created(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static async Task<List<string>> HostNamesAsync(HttpClient client, string url) =>
        (await client.GetFromJsonAsync<JsonElement>(url)).GetProperty("items").EnumerateArray().Select(h => h.GetProperty("name").GetString()!).ToList();

    /// <summary>The hosts ansible itself lists for an inventory, asked directly (ansible all --list-hosts).</summary>
    private static async Task<List<string>> AnsibleHostsAsync(string inventory)
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "inventory.yml");
        await File.WriteAllTextAsync(file, inventory);
        var psi = new ProcessStartInfo("ansible") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var arg in new[] { "all", "-i", file, "--list-hosts" })
            psi.ArgumentList.Add(arg);
        psi.Environment["ANSIBLE_INVENTORY_ENABLED"] = "yaml";
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync());
        // "  hosts (9):" then one host per line.
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1).ToList();
    }
}
