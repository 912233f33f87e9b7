using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// Runs in the bubblewrap sandbox as shipped (no writable paths): local tasks cannot see the server's secrets, other
/// runs or the data dir, cannot write the project checkout, and get a /tmp of their own; ordinary runs, local and over
/// SSH with the key from the run's ssh-agent, work. The test machine has bubblewrap (scripts/test.sh installs it).
/// </summary>
public sealed class SandboxTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(180);

    private static readonly string[] Sandboxed = ["--Ansible:Sandbox=bubblewrap", "--Ansible:SandboxWritablePaths="];

    // Each host runs its own argv; a non-zero exit fails the host with the command's error, as a probing playbook would.
    private const string Probe = """
        - hosts: all
          gather_facts: false
          tasks:
            - command: {argv: "{{ argv }}"}
              register: probe
              failed_when: false
            - fail: {msg: "blocked rc={{ probe.rc }}: {{ probe.stderr }}"}
              when: probe.rc != 0
        """;

    private const string Hang = """
        - hosts: all
          gather_facts: false
          tasks:
            - name: hang
              command: sleep 120
        """;

    [Fact]
    public async Task Local_tasks_cannot_read_the_secret_key_the_data_dir_another_run_the_runs_key_or_the_servers_environment()
    {
        using var playbooks = new TempDir();
        using var keys = new TempDir();
        // A key file outside the data dir, where only the sandbox's own hiding can keep it from a playbook.
        var keyFile = $"/var/tmp/opsgate-sandbox-test-{Guid.NewGuid():N}.key";
        var marker = "env-marker-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable("OPSGATE_SANDBOX_TEST_MARKER", marker);
        var leaked = $"/tmp/opsgate-sandbox-{Guid.NewGuid():N}";
        try
        {
            await using var server = await StartAsync(Provider.Sqlite, playbooks, [.. Sandboxed, $"--Secrets:KeyFile={keyFile}"], ("probe.yml", Probe), ("hang.yml", Hang));
            Assert.True(new FileInfo(keyFile).Length > 0, "the server made its key file");
            var secret = await server.Admin.PostAsJsonAsync("/api/v1/credentials",
                new { name = "machines", kind = "ssh_key", secret = await SshTarget.NewKeyAsync(keys) }, OpsgateServer.Json);
            Assert.Equal(HttpStatusCode.Created, secret.StatusCode);

            // Another run, busy: its private directory exists on the host while the probe runs.
            var other = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "hang.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["busy"])), credential = "machines" });
            await ReadEventsAsync(server.Admin, other, e => e.Type == "ansible.task_start" && e.Str("name") == "hang", timeout: RunLimit);
            var otherRun = Assert.Single(Directory.GetDirectories(Path.Combine(server.DataDir, "run")).SelectMany(p => Directory.GetDirectories(p, "ansible-*")));
            Assert.True(File.Exists(Path.Combine(otherRun, "inventory.yml")));

            string Host(string name, params string[] argv) => $"{name}: {{argv: {JsonSerializer.Serialize(argv)}}}";
            var inventory = await StoreInventoryAsync(server.Admin, Inventory([],
                Host("secret_key", "test", "-s", keyFile),
                Host("database", "test", "-e", Path.Combine(server.DataDir, "opsgate.db")),
                Host("other_run", "ls", otherRun),
                // The run's own directory (HOME is a directory in it) holds no private key: it is in the agent only. (The
                // pattern does not match itself in the module's own files there.)
                Host("run_key", "grep", "-rl", "OPENSSH PRIVATE KE[Y]", "{{ lookup('env', 'HOME') | dirname }}"),
                Host("environment", "sh", "-c", $"grep -ls {marker} /proc/*/environ"),
                Host("tmp", "sh", "-c", $"echo private > {leaked} && test -s {leaked}"),
                Host("plain", "true")));
            var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "probe.yml", inventory, credential = "machines" });
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
            Assert.Equal("failed", job.Status());
            var hosts = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");

            string Blocked(string host)
            {
                var result = hosts.GetProperty(host);
                Assert.True(result.GetProperty("stats").GetProperty("failed").GetInt32() == 1, $"{host} was not blocked: {result}");
                return result.GetProperty("failures")[0].GetProperty("message").GetString()!;
            }
            Assert.StartsWith("blocked rc=1", Blocked("secret_key"), StringComparison.Ordinal);
            Assert.StartsWith("blocked rc=1", Blocked("database"), StringComparison.Ordinal);
            Assert.Contains("No such file or directory", Blocked("other_run"), StringComparison.Ordinal);
            Assert.StartsWith("blocked rc=1", Blocked("run_key"), StringComparison.Ordinal);
            Assert.StartsWith("blocked rc=", Blocked("environment"), StringComparison.Ordinal);
            // /tmp was writable, and it was the run's own: nothing reached the host's.
            Assert.Equal(0, hosts.GetProperty("tmp").GetProperty("stats").GetProperty("failed").GetInt32());
            Assert.False(File.Exists(leaked));
            Assert.Equal(0, hosts.GetProperty("plain").GetProperty("stats").GetProperty("failed").GetInt32());

            Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{other}/cancel", null)).StatusCode);
            Assert.Equal("cancelled", (await TestJobs.WaitAsync(server.Admin, other, timeout: RunLimit)).Status());
            // Both runs' ssh-agents ended with their runs.
            Assert.Empty(ProcessesWith("agent.sock"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("OPSGATE_SANDBOX_TEST_MARKER", null);
            File.Delete(keyFile);
            File.Delete(leaked);
        }
    }

    [Fact]
    public async Task A_project_playbook_cannot_write_into_its_checkout()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - command: {argv: [cat, "{{ playbook_dir }}/site.yml"]}
                - command: {argv: [touch, "{{ playbook_dir }}/written-by-a-playbook"]}
                  register: write
                  failed_when: false
                - fail: {msg: "blocked rc={{ write.rc }}: {{ write.stderr }}"}
                  when: write.rc != 0
            """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [.. Sandboxed, repo.AllowArg]);
        var project = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "site", git_repo = repo.Bare, @ref = "main" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, project.StatusCode);

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { project = "site", playbook = "site.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"])) });
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
        Assert.Equal("failed", job.Status());
        var h1 = (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts")).GetProperty("h1");
        // It read its checkout (the first task passed) and could not write it.
        Assert.Equal(2, h1.GetProperty("stats").GetProperty("ok").GetInt32());
        var failure = h1.GetProperty("failures")[0].GetProperty("message").GetString()!;
        Assert.True(failure.Contains("Read-only file system", StringComparison.Ordinal), failure);
        Assert.Empty(Directory.GetFiles(Path.Combine(server.DataDir, "projects"), "written-by-a-playbook", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Local_and_ssh_runs_pass_in_the_sandbox_with_the_machine_key_from_the_runs_agent()
    {
        await using var ssh = await SshTarget.StartAsync();
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, Sandboxed, ("site.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - ping:
                - command: id -un
                  register: who
                - debug: {msg: "{{ inventory_hostname }} is {{ who.stdout }}"}
            """));
        var created = await server.Admin.PostAsJsonAsync("/api/v1/credentials",
            new { name = "machines", kind = "ssh_key", secret = await File.ReadAllTextAsync(ssh.ClientKey), username = "root" }, OpsgateServer.Json);
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        // No key file in the inventory: only the agent has the key.
        var remote = $"{{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {ssh.Port}, ansible_python_interpreter: /usr/bin/python3, " +
                     "ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'}";
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["local"], $"s1: {remote}", $"s2: {remote}"));

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory, credential = "machines" });
        var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "s1 is root");
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "s2 is root");
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("host") == "local" && e.Str("message")?.StartsWith("local is ", StringComparison.Ordinal) == true);
        // The agent and the ssh connections ended with the run.
        Assert.Empty(ProcessesWith("agent.sock"));
        await WaitUntilAsync(() => ssh.Sessions().Count == 0, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Health_says_whether_runs_are_sandboxed()
    {
        await using (var off = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Ansible:Sandbox=none"]))
        {
            var health = await off.Admin.GetFromJsonAsync<JsonElement>("/health");
            Assert.Equal("healthy", health.GetProperty("status").GetString());
            Assert.Equal("disabled: runs are not sandboxed (Ansible:Sandbox is none)", health.GetProperty("services").GetProperty("ansible_sandbox").GetString());
        }
        await using var on = await OpsgateServer.StartAsync(Provider.Sqlite, Sandboxed);
        var sandboxed = await on.Admin.GetFromJsonAsync<JsonElement>("/health");
        Assert.Equal("healthy: runs are sandboxed (bubblewrap)", sandboxed.GetProperty("services").GetProperty("ansible_sandbox").GetString());
    }

    [Fact]
    public async Task A_bad_sandbox_setting_stops_start_up_naming_the_key()
    {
        using var dir = new TempDir();
        await using var app = OpsgateHost.Build(["--urls=http://127.0.0.1:0", $"--DataDir={dir.Path}", "--Ansible:Sandbox=docker"]);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartOpsgateAsync());
        Assert.Contains("Ansible:Sandbox must be auto, bubblewrap or none, not 'docker'", e.Message, StringComparison.Ordinal);

        await using var relative = OpsgateHost.Build(["--urls=http://127.0.0.1:0", $"--DataDir={dir.Path}", "--Ansible:SandboxWritablePaths=reports"]);
        e = await Assert.ThrowsAsync<OptionsValidationException>(() => relative.StartOpsgateAsync());
        Assert.Contains("Ansible:SandboxWritablePaths: 'reports' must be an existing absolute directory", e.Message, StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan limit)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < limit, "condition not met in time");
            await Task.Delay(100);
        }
    }
}
