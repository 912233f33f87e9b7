using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>ansible.run with the real ansible-playbook: per-host results equal ansible's own PLAY RECAP, live events, check mode, cancel.</summary>
public sealed class AnsibleRunTests
{
    private const string Mixed = """
        - hosts: all
          gather_facts: false
          tasks:
            - name: greet
              debug: {msg: "hello {{ inventory_hostname }} from {{ release }}"}
            - name: remember
              set_fact: {seen: "{{ release }}"}
            - name: check the extra var arrived
              assert: {that: ["seen == 'r42'"]}
            - name: reach every host
              ping:
            - name: run a command
              command: /bin/true
              when: inventory_hostname == 'web1'
            - name: break one host
              fail: {msg: "boom on {{ inventory_hostname }}"}
              when: inventory_hostname == 'web2'
            - name: loop
              debug: {msg: "{{ item }}"}
              loop: [a, b]
        """;

    /// <summary>From one host to 200 (a host range): every host is in the results with ansible's own recap, every event once and in order.</summary>
    [Theory]
    [InlineData(1, Provider.Sqlite)]
    [InlineData(37, Provider.Postgres)]
    [InlineData(200, Provider.Sqlite)]
    public async Task Inventories_of_one_to_200_local_hosts_give_every_host_its_recap(int count, Provider provider)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(provider, playbooks, ("site.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - name: greet
                  debug: {msg: "hello {{ inventory_hostname }}"}
                - name: remember
                  set_fact: {seen: yes}
                - name: only the first
                  debug: {msg: first}
                  when: inventory_hostname == 'n001'
            """));
        var range = count == 1 ? "n001:" : $"n[001:{count:000}]:";
        var inventory = await StoreInventoryAsync(server.Admin, "all:\n  vars: {" + LocalVars + "}\n  hosts:\n    " + range + "\n");

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory, forks = 50 });
        var events = await ReadEventsAsync(server.Admin, id, timeout: TimeSpan.FromMinutes(4));
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromMinutes(1));

        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        Assert.Equal(count * 2 + 1, events.Count(e => e.Type == "ansible.runner_ok"));
        Assert.Equal(count - 1, events.Count(e => e.Type == "ansible.runner_skipped"));
        var recap = RecapFromOutput(events);
        Assert.Equal(count, recap.Count);
        var results = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
        Assert.Equal(recap.Keys.Order(StringComparer.Ordinal), results.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        foreach (var (host, figures) in recap)
            Assert.Equal(figures, FromApi(results.GetProperty(host).GetProperty("stats")));
        Assert.Equal(3, recap["n001"].Ok);
        if (count > 1)
            Assert.Equal(1, recap[$"n{count:000}"].Skipped);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_run_with_a_failing_and_an_unreachable_host_reports_each_host_as_ansibles_recap_does(Provider provider)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(provider, playbooks, ("site.yml", Mixed));
        var hosts = new[] { "web1", "web2", "web3", "web4", "web5" };
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(hosts,
            $"down: {{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {ClosedPort()}, ansible_user: nobody, ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'}}"));

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory, extra_vars = new { release = "r42" }, forks = 10 });
        var events = await ReadEventsAsync(server.Admin, id);
        var job = await TestJobs.WaitAsync(server.Admin, id);

        Assert.Equal("failed", job.Status());
        var detail = job.Step("playbook").GetProperty("detail").GetString()!;
        Assert.Contains("1 of 6 hosts failed (web2); first failure: task 'break one host': boom on web2", detail, StringComparison.Ordinal);
        Assert.Contains("1 of 6 hosts unreachable (down)", detail, StringComparison.Ordinal);
        Assert.Contains("exit code", detail, StringComparison.Ordinal);

        // Every event once, in order, and the stream ends with the total.
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));
        Assert.Equal("job.finished", events[^1].Type);
        var ansible = events.Where(e => e.Type.StartsWith("ansible.", StringComparison.Ordinal) && e.Type != "ansible.output").ToList();
        Assert.Equal(Enumerable.Range(1, ansible.Count(e => e.Type != "ansible.summary")).Select(i => (long)i),
            ansible.Where(e => e.Type != "ansible.summary").Select(e => e.Body.GetProperty("ansible_seq").GetInt64()));
        Assert.Equal("ansible.playbook_start", ansible[0].Type);
        Assert.Equal("ansible.stats", ansible[^2].Type);
        Assert.Equal("ansible.summary", ansible[^1].Type);
        Assert.Equal(7, ansible.Count(e => e.Type == "ansible.task_start"));
        Assert.Contains(ansible, e => e.Type == "ansible.runner_ok" && e.Str("host") == "web3" && e.Str("message") == "hello web3 from r42");
        Assert.Contains(ansible, e => e.Type == "ansible.runner_failed" && e.Str("host") == "web2" && e.Str("message") == "boom on web2");
        Assert.Contains(ansible, e => e.Type == "ansible.runner_unreachable" && e.Str("host") == "down");
        Assert.Contains(ansible, e => e.Type == "ansible.item_ok" && e.Str("host") == "web1" && e.Str("item") == "b");
        Assert.Contains(ansible, e => e.Type == "ansible.runner_ok" && e.Str("host") == "web1" && e.Str("task") == "run a command" && e.Body.GetProperty("changed").GetBoolean());
        // A task starts before its results arrive.
        var taskStart = events.FindIndex(e => e.Type == "ansible.task_start" && e.Str("name") == "break one host");
        Assert.True(taskStart < events.FindIndex(e => e.Type == "ansible.runner_failed"));

        // Per-host results equal the PLAY RECAP ansible-playbook printed in the same run.
        var recap = RecapFromOutput(events);
        var results = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
        Assert.Equal(recap.Keys.Order(StringComparer.Ordinal), results.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal(6, recap.Count);
        foreach (var (host, figures) in recap)
            Assert.Equal(figures, FromApi(results.GetProperty(host).GetProperty("stats")));
        Assert.Equal(1, recap["web2"].Failed);
        Assert.Equal(1, recap["down"].Unreachable);
        Assert.Equal(1, recap["web1"].Changed);

        var web2 = results.GetProperty("web2");
        var failure = Assert.Single(web2.GetProperty("failures").EnumerateArray());
        Assert.Equal("break one host", failure.GetProperty("task").GetString());
        Assert.Equal("boom on web2", failure.GetProperty("message").GetString());
        Assert.Equal("web2", web2.GetProperty("stats").GetProperty("target").GetString());
        Assert.Equal(id, web2.GetProperty("stats").GetProperty("job_id").GetString());
        Assert.True(web2.GetProperty("stats").GetProperty("complete").GetBoolean());
        Assert.Contains("Connection refused", results.GetProperty("down").GetProperty("failures")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, results.GetProperty("web3").GetProperty("failures").ValueKind);

        // The extra vars travel in a private file, never on a command line or into ansible's output.
        var output = string.Concat(events.Where(e => e.Type == "ansible.output").Select(e => e.Str("text")));
        Assert.DoesNotContain("--extra-vars", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_mode_reports_changes_and_makes_none_and_a_dry_run_is_check_mode()
    {
        using var playbooks = new TempDir();
        using var target = new TempDir();
        var file = Path.Combine(target.Path, "motd-{{ inventory_hostname }}");
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("write.yml", $$"""
            - hosts: all
              gather_facts: false
              tasks:
                - copy: {dest: "{{file}}", content: "managed by opsgate\n"}
            """));
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["a", "b"]));

        var checkRun = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "write.yml", inventory, check = true });
        var dryRun = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "write.yml", inventory }, dryRun: true);
        foreach (var id in new[] { checkRun, dryRun })
        {
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(60));
            Assert.True(job.Status() == "succeeded", job.ToString());
            Assert.StartsWith("check mode: playbook ran on 2 hosts, 2 changed", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);
            var results = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
            Assert.Equal(1, results.GetProperty("a").GetProperty("stats").GetProperty("changed").GetInt32());
        }
        Assert.Empty(Directory.GetFiles(target.Path));

        var real = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "write.yml", inventory, limit = "b" });
        var done = await TestJobs.WaitAsync(server.Admin, real, timeout: TimeSpan.FromSeconds(60));
        Assert.True(done.Status() == "succeeded", done.ToString());
        Assert.Equal(["motd-b"], Directory.GetFiles(target.Path).Select(Path.GetFileName));
        Assert.Equal("managed by opsgate\n", await File.ReadAllTextAsync(Path.Combine(target.Path, "motd-b")));
    }

    [Fact]
    public async Task Events_arrive_live_while_the_playbook_runs()
    {
        using var playbooks = new TempDir();
        using var gate = new TempDir();
        var open = Path.Combine(gate.Path, "open");
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("gate.yml", $$"""
            - hosts: all
              gather_facts: false
              tasks:
                - debug: {msg: before}
                - name: wait for the test
                  wait_for: {path: "{{open}}", timeout: 60}
                - debug: {msg: after}
            """));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "gate.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2"])) });

        // The results of the first task and the start of the second are on the stream while ansible is blocked in it.
        var early = await ReadEventsAsync(server.Admin, id, e => e.Type == "ansible.task_start" && e.Str("name") == "wait for the test");
        Assert.Equal(2, early.Count(e => e.Type == "ansible.runner_ok" && e.Str("message") == "before"));
        Assert.Equal("running", (await TestJobs.GetAsync(server.Admin, id)).Status());
        Assert.DoesNotContain(early, e => e.Type == "ansible.stats");

        await File.WriteAllTextAsync(open, "");
        var rest = await ReadEventsAsync(server.Admin, id, after: early[^1].Id);
        Assert.Equal(early[^1].Id + 1, rest[0].Id);
        Assert.Equal(2, rest.Count(e => e.Type == "ansible.runner_ok" && e.Str("message") == "after"));
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());
    }

    [Fact]
    public async Task Cancel_stops_ansible_and_all_its_processes_and_keeps_what_it_reported()
    {
        using var playbooks = new TempDir();
        var marker = "cancel-me-" + Guid.NewGuid().ToString("N")[..8];
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ($"{marker}.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - debug: {msg: started}
                - name: hang
                  wait_for: {path: /nonexistent/never, timeout: 300}
            """));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = $"{marker}.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2"])) });
        await ReadEventsAsync(server.Admin, id, e => e.Type == "ansible.task_start" && e.Str("name") == "hang");
        var leader = Assert.Single(ProcessesWith(marker), pid => ProcessGroup(pid).Contains(pid));
        // The module processes run in ansible's process group too.
        await WaitUntilAsync(() => ProcessGroup(leader).Count >= 3, TimeSpan.FromSeconds(20));

        var watch = Stopwatch.StartNew();
        var cancel = await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(20));
        Assert.Equal("cancelled", job.Status());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"cancel took {watch.Elapsed}");
        Assert.Empty(ProcessGroup(leader));
        Assert.Empty(ProcessesWith(marker));

        // What ansible reported before it stopped is kept, marked as not from ansible's own stats.
        var results = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
        Assert.Equal(1, results.GetProperty("h1").GetProperty("stats").GetProperty("ok").GetInt32());
        Assert.False(results.GetProperty("h1").GetProperty("stats").GetProperty("complete").GetBoolean());
        var events = await ReadEventsAsync(server.Admin, id);
        Assert.Contains(events, e => e.Type == "ansible.summary" && e.Str("stopped") == "cancelled");
    }

    [Fact]
    public async Task A_broken_inventory_or_playbook_fails_the_step_with_ansibles_reason()
    {
        using var playbooks = new TempDir();
        using var runbooks = new TempDir();
        // Stored inventories are checked when stored; inline YAML (custom runbooks) is checked by ansible at run time.
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "inline.yaml"), """
            name: ansible-inline
            parameters:
              - {name: playbook, type: string, required: true}
              - {name: inventory_yaml, type: string, required: true}
            steps:
              - name: playbook
                kind: ansible.run
                with: {playbook: "{{ params.playbook }}", inventory_yaml: "{{ params.inventory_yaml }}"}
            """);
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [$"--Jobs:RunbookDirectory={runbooks.Path}"],
            ("ok.yml", "- hosts: all\n  gather_facts: false\n  tasks: [{debug: {msg: hi}}]\n"), ("broken.yml", "- hosts: all\n  tasks: [{nosuchmodule_xyz: {}}]\n"));

        var badInventory = await TestJobs.SubmitAsync(server.Admin, "ansible-inline", new { playbook = "ok.yml", inventory_yaml = "all:\n  hosts: [unclosed\n" });
        var job = await TestJobs.WaitAsync(server.Admin, badInventory, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal("failed", job.Status());
        Assert.Contains("ansible-playbook failed with exit code", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("inventory", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);

        var inline = await TestJobs.SubmitAsync(server.Admin, "ansible-inline", new { playbook = "ok.yml", inventory_yaml = Inventory(["h1"]) });
        job = await TestJobs.WaitAsync(server.Admin, inline, timeout: TimeSpan.FromSeconds(30));
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.False(job.Step("playbook").GetProperty("output").TryGetProperty("inventory", out _));

        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var badPlaybook = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "broken.yml", inventory });
        job = await TestJobs.WaitAsync(server.Admin, badPlaybook, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal("failed", job.Status());
        Assert.Contains("nosuchmodule_xyz", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);

        var escape = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "../../etc/passwd", inventory });
        job = await TestJobs.WaitAsync(server.Admin, escape);
        Assert.Equal("failed", job.Status());
        Assert.Contains("outside the playbook directory", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);

        var badVars = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { playbook = "ok.yml", inventory, extra_vars = "x=1" } });
        Assert.Contains("params.extra_vars", await Problem.AssertAsync(badVars, HttpStatusCode.BadRequest), StringComparison.Ordinal);

        var missing = await server.Client(OpsgateServer.AdminKey).GetAsync("/api/v1/jobs/0123456789abcdefghjkmnpqrs/hosts");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < limit, $"condition not met within {limit}");
            await Task.Delay(50);
        }
    }
}
