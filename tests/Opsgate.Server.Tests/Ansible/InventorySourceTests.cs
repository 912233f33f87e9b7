using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>Inventories sourced from a project (a real bare git repo): an executable script, YAML and constructed configs, read by the real ansible-inventory.</summary>
public sealed class InventorySourceTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(120);

    /// <summary>A dynamic inventory script as ansible's script plugin runs it; it also reports its environment and working directory as host vars.</summary>
    private static string Script(params string[] appHosts) => $$$"""
        #!/usr/bin/python3
        import json, os, sys
        if sys.argv[1:] == ["--list"]:
            print(json.dumps({
                "app": {"hosts": {{{JsonSerializer.Serialize(appHosts)}}}, "vars": {"greeting": "hello", "port": "8080"}, "children": ["edge"]},
                "edge": {"hosts": ["e1"]},
                "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}},
                "_meta": {"hostvars": {
                    "e1": {"role": "primary", "tags": ["a", "b"], "yes_string": "yes"},
                    "{{{appHosts[0]}}}": {"env_keys": sorted(os.environ), "cwd": os.getcwd()},
                }},
            }))
        else:
            print("{}")
        """;

    private const string Playbook = """
        - hosts: all
          gather_facts: false
          tasks:
            - debug: {msg: "{{ greeting }} {{ inventory_hostname }} {{ role | default('none') }} {{ yes_string | default('') }}"}
        """;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_script_in_a_project_is_an_inventory_a_job_runs_on_and_a_sync_after_a_commit_stores_the_new_hosts(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        var one = await repo.CommitAsync("one", ("inventory/hosts.py", Script("s1", "s2")), ("site.yml", Playbook));
        Environment.SetEnvironmentVariable("OPSGATE_SOURCE_TEST_CANARY", "server-secret");
        await using var server = await OpsgateServer.StartAsync(provider, [repo.AllowArg]);
        await CreateProjectAsync(server, "cmdb", repo.Bare);

        var created = await Created(await PostSource(server, "dyn", "cmdb", "inventory/hosts.py", env: "prod"));
        Assert.Equal(("1", 3, "prod"), (created.GetProperty("version").GetString(), created.GetProperty("host_count").GetInt32(), created.GetProperty("env").GetString()));
        var source = created.GetProperty("source");
        Assert.Equal(("cmdb", "inventory/hosts.py", one), (source.GetProperty("project").GetString(), source.GetProperty("path").GetString(), source.GetProperty("commit").GetString()));

        // /hosts: what ansible itself lists for the script, with the groups (app's child edge puts e1 in app too).
        Assert.Equal(await AnsibleHostsAsync(Script("s1", "s2")), (await HostsAsync(server, "dyn")).Keys.Order(StringComparer.Ordinal));
        var hosts = await HostsAsync(server, "dyn");
        Assert.Equal(["app"], hosts["s1"]);
        Assert.Equal(["app", "edge"], hosts["e1"]);

        // The stored YAML is the expansion written back; it names where it came from.
        var detail = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/dyn");
        Assert.Contains("greeting: hello", detail.GetProperty("hosts").GetString(), StringComparison.Ordinal);
        Assert.Equal(one, detail.GetProperty("source").GetProperty("commit").GetString());
        Assert.Equal(JsonValueKind.Null, detail.GetProperty("vars").ValueKind);

        // A job over it runs on those hosts with their group and host vars (a string "yes" stays a string).
        var (job, events, ran) = await RunAsync(server, new { project = "cmdb", playbook = "site.yml", inventory = "dyn" });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal(["e1", "s1", "s2"], ran);
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "hello e1 primary yes");
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "hello s2 none ");
        // The script ran in the checkout of the commit, with the scrubbed environment: nothing of the server's.
        var s1 = await HostVarsAsync(server, job, "s1");
        Assert.EndsWith(Path.Combine("checkouts", one), s1.GetProperty("cwd").GetString(), StringComparison.Ordinal);
        var keys = s1.GetProperty("env_keys").EnumerateArray().Select(k => k.GetString()!).ToList();
        Assert.Contains("PATH", keys);
        Assert.DoesNotContain("OPSGATE_SOURCE_TEST_CANARY", keys);
        Assert.DoesNotContain(keys, k => k.StartsWith("OPSGATE", StringComparison.Ordinal) || k.StartsWith("DOTNET", StringComparison.Ordinal));

        // A commit changes the script: a sync fetches it and stores a new version with the new hosts.
        var two = await repo.CommitAsync("two", ("inventory/hosts.py", Script("s1", "s3", "s4")));
        var sync = await SyncAsync(server, "dyn");
        Assert.True(sync.GetProperty("changed").GetBoolean(), sync.ToString());
        var latest = sync.GetProperty("inventory");
        Assert.Equal(("2", 4, "prod", two), (latest.GetProperty("version").GetString(), latest.GetProperty("host_count").GetInt32(),
            latest.GetProperty("env").GetString(), latest.GetProperty("source").GetProperty("commit").GetString()));
        Assert.Equal(["e1", "s1", "s3", "s4"], (await HostsAsync(server, "dyn")).Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["e1", "s1", "s2"], (await HostsAsync(server, "dyn", "?version=1")).Keys.Order(StringComparer.Ordinal));

        // Nothing changed: no new version. By id as by name.
        var again = await SyncAsync(server, created.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.False(again.GetProperty("changed").GetBoolean(), again.ToString());
        Assert.Equal("2", again.GetProperty("inventory").GetProperty("version").GetString());
        var versions = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/dyn/versions");
        Assert.Equal([one, two], versions.GetProperty("items").EnumerateArray().Select(v => v.GetProperty("source").GetProperty("commit").GetString()));

        (job, _, ran) = await RunAsync(server, new { project = "cmdb", playbook = "site.yml", inventory = "dyn" });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal("2", job.Step("playbook").GetProperty("output").GetProperty("inventory").GetProperty("version").GetString());
        Assert.Equal(["e1", "s1", "s3", "s4"], ran);
    }

    [Fact]
    public async Task A_yaml_file_and_a_directory_with_a_constructed_config_and_group_vars_are_read_by_ansible()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("inventories",
            ("static.yml", "all:\n  children:\n    db:\n      hosts:\n        db[1:3].example.com:\n      vars: {port: 5432}\n"),
            ("fleet/10-hosts.yml", "all:\n  hosts:\n    a1: {role: db}\n    a2: {role: web}\n    a3: {role: web}\n"),
            ("fleet/20-constructed.yml", "plugin: constructed\nstrict: true\nkeyed_groups:\n  - key: role\n    prefix: role\ncompose:\n  upper: role | upper\n"),
            ("fleet/group_vars/all.yml", "from_group_vars: 42\n"));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        await CreateProjectAsync(server, "inv", "file://" + repo.Bare);

        var file = await Created(await PostSource(server, "static", "inv", "static.yml"));
        Assert.Equal(3, file.GetProperty("host_count").GetInt32());
        Assert.Equal(["db1.example.com", "db2.example.com", "db3.example.com"], (await HostsAsync(server, "static")).Keys);

        var fleet = await Created(await PostSource(server, "fleet", "inv", "fleet"));
        Assert.Equal(3, fleet.GetProperty("host_count").GetInt32());
        var hosts = await HostsAsync(server, "fleet");
        Assert.Equal(["role_db"], hosts["a1"]);
        Assert.Equal(["role_web"], hosts["a3"]);
        var yaml = (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/fleet")).GetProperty("hosts").GetString()!;
        Assert.Contains("upper: WEB", yaml, StringComparison.Ordinal);
        Assert.Contains("from_group_vars: 42", yaml, StringComparison.Ordinal);

        // The generated YAML is the same inventory to ansible as the source was.
        Assert.Equal(await AnsibleHostsAsync(yaml, "yaml"), hosts.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_failing_script_a_path_out_of_the_checkout_and_an_unknown_project_are_refused_with_the_reason()
    {
        using var repo = await GitRepo.CreateAsync();
        using var outside = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(outside.Path, "hosts.yml"), "all:\n  hosts:\n    stolen:\n");
        await repo.CommitAsync("one",
            ("broken.py", "#!/usr/bin/python3\nimport sys\nsys.stderr.write('cannot reach the CMDB at cmdb.example.com\\n')\nsys.exit(3)\n"),
            ("slow.py", "#!/usr/bin/python3\nimport time\ntime.sleep(120)\n"),
            ("good.py", Script("g1")),
            ("inside/hosts.yml", "all:\n  hosts:\n    fine:\n"));
        await repo.CommitLinkAsync("a link out", "escape.yml", Path.Combine(outside.Path, "hosts.yml"));
        await repo.CommitLinkAsync("a directory link out", "inside/out", outside.Path);
        await repo.CommitLinkAsync("a loop back to the root, which holds the links out", "cycle/back", "..");
        await repo.CommitLinkAsync("a link to itself", "self.yml", "self.yml");
        // The default limit (2 min): on a loaded machine ansible-inventory alone may take seconds.
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        await CreateProjectAsync(server, "p", repo.Bare);

        var broken = await Problem.AssertAsync(await PostSource(server, "x", "p", "broken.py"), HttpStatusCode.BadRequest);
        Assert.Contains("cannot reach the CMDB at cmdb.example.com", broken, StringComparison.Ordinal);
        Assert.Contains("broken.py", broken, StringComparison.Ordinal);
        Assert.DoesNotContain(server.DataDir, broken, StringComparison.Ordinal);
        await using (var impatient = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Ansible:InventoryTimeout=00:00:03", repo.AllowArg]))
        {
            // A script that never ends is stopped at the limit (it sleeps 120 s, far past any slowness of the machine).
            await CreateProjectAsync(impatient, "p", repo.Bare);
            Assert.Contains("did not finish within", await Problem.AssertAsync(await PostSource(impatient, "x", "p", "slow.py"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        }

        foreach (var path in new[] { "../../../../../../.." + outside.Path + "/hosts.yml", outside.Path + "/hosts.yml", "escape.yml", "inside/out/hosts.yml", "inside", "cycle", "self.yml" })
            Assert.Contains("is outside project 'p'", await Problem.AssertAsync(await PostSource(server, "x", "p", path), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("does not exist in project 'p'", await Problem.AssertAsync(await PostSource(server, "x", "p", "nope.yml"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("project 'nope' does not exist", await Problem.AssertAsync(await PostSource(server, "x", "nope", "good.py"), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Admin.PostAsJsonAsync("/api/v1/inventories",
            new { name = "x", hosts = "all:\n  hosts:\n    a:\n", source = new { project = "p", path = "good.py" } }, OpsgateServer.Json), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "x" }, OpsgateServer.Json), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "x", source = new { project = "p" } }, OpsgateServer.Json), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/inventories/x"), HttpStatusCode.NotFound);

        // A sourced inventory whose script breaks later: the sync is refused, the stored version stays.
        await Created(await PostSource(server, "good", "p", "good.py"));
        await repo.CommitAsync("break it", ("good.py", "#!/usr/bin/python3\nimport sys\nsys.stderr.write('the CMDB is down\\n')\nsys.exit(1)\n"));
        Assert.Contains("the CMDB is down", await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/inventories/good/sync", null), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Equal(["1"], (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/good/versions")).GetProperty("items").EnumerateArray().Select(v => v.GetProperty("version").GetString()));

        // A YAML inventory has no source to sync; an unknown one is a 404.
        await StoreInventoryAsync(server.Admin, "all:\n  hosts:\n    a:\n", "plain");
        Assert.Contains("not sourced from a project", await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/inventories/plain/sync", null), HttpStatusCode.Conflict), StringComparison.Ordinal);
        await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/inventories/nope/sync", null), HttpStatusCode.NotFound);
    }

    private static Task<HttpResponseMessage> PostSource(OpsgateServer server, string name, string project, string path, string? env = null) =>
        server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name, env, source = new { project, path } }, OpsgateServer.Json);

    private static async Task CreateProjectAsync(OpsgateServer server, string name, string gitRepo)
    {
        var response = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name, git_repo = gitRepo }, OpsgateServer.Json);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create project {name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static async Task<JsonElement> SyncAsync(OpsgateServer server, string inventory)
    {
        var response = await server.Admin.PostAsync($"/api/v1/inventories/{inventory}/sync", null);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"sync {inventory}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static async Task<(JsonElement Job, List<SseEvent> Events, List<string> Hosts)> RunAsync(OpsgateServer server, object parameters)
    {
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", parameters);
        var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
        var hosts = (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts")).EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
        return (job, events, hosts);
    }

    /// <summary>A host's vars as the stored inventory gives them to a run (from the YAML the version holds).</summary>
    private static async Task<JsonElement> HostVarsAsync(OpsgateServer server, JsonElement job, string host)
    {
        var version = job.Step("playbook").GetProperty("output").GetProperty("inventory").GetProperty("version").GetString();
        var yaml = (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/inventories/dyn?version={version}")).GetProperty("hosts").GetString()!;
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "inventory.yml");
        await File.WriteAllTextAsync(file, yaml);
        var output = await AnsibleAsync("ansible-inventory", dir.Path, "yaml", "--host", host, "-i", file);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private static async Task<Dictionary<string, List<string>>> HostsAsync(OpsgateServer server, string inventory, string query = "") =>
        (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/inventories/{inventory}/hosts{query}")).GetProperty("items").EnumerateArray().ToDictionary(
            h => h.GetProperty("name").GetString()!, h => h.GetProperty("groups").EnumerateArray().Select(g => g.GetString()!).ToList());

    private static async Task<JsonElement> Created(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>The hosts ansible itself lists for an inventory file (a script by default), asked directly, sorted.</summary>
    private static async Task<List<string>> AnsibleHostsAsync(string text, string plugin = "script")
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, plugin == "script" ? "inventory.py" : "inventory.yml");
        await File.WriteAllTextAsync(file, text);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var output = await AnsibleAsync("ansible", dir.Path, plugin, "all", "-i", file, "--list-hosts");
        // "  hosts (3):" then one host per line.
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1).Order(StringComparer.Ordinal).ToList();
    }

    private static async Task<string> AnsibleAsync(string command, string cwd, string plugin, params string[] args)
    {
        var psi = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = cwd };
        foreach (var arg in args)
            psi.ArgumentList.Add(arg);
        psi.Environment["ANSIBLE_INVENTORY_ENABLED"] = plugin;
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await error);
        return await output;
    }
}
