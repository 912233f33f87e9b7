using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>Sharded fan-out: shards give the same results as one run; fail_fast, cancel, refusals; shards spread over replicas.</summary>
public sealed class ShardTests
{
    // Controller-only tasks (cheap here), a failing host, a skipped task, group vars and a host var the shards must keep.
    private const string Site = """
        - hosts: all
          gather_facts: false
          tasks:
            - name: greet
              debug: {msg: "hello {{ inventory_hostname }}"}
            - name: only h03
              debug: {msg: "h03 here"}
              when: inventory_hostname == 'h03'
            - name: group vars arrived
              assert: {that: ["role == ('web' if 'web' in group_names else 'db')"]}
            - name: host var arrived
              assert: {that: ["special == 'yes'"]}
              when: inventory_hostname == 'h12'
            - name: break one host
              fail: {msg: "boom on {{ inventory_hostname }}"}
              when: inventory_hostname == 'h07'
            - name: remember
              set_fact: {seen: "{{ inventory_hostname }}"}
        """;

    private const string Grouped = """
        all:
          vars: {ansible_connection: local, ansible_python_interpreter: /usr/bin/python3}
          children:
            web:
              vars: {role: web}
              hosts:
                h[01:08]:
            db:
              vars: {role: db}
              hosts:
                h[09:16]:
                h12: {special: 'yes'}
        """;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Four_shards_give_the_same_per_host_results_and_recap_as_one_run(Provider provider)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(provider, playbooks, ("site.yml", Site));

        var single = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory = await StoreInventoryAsync(server.Admin, Grouped), forks = 10 });
        var singleEvents = await ReadEventsAsync(server.Admin, single, timeout: TimeSpan.FromSeconds(120));
        var sharded = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory = await StoreInventoryAsync(server.Admin, Grouped), forks = 10, shards = 4 });
        var shardedEvents = await ReadEventsAsync(server.Admin, sharded, timeout: TimeSpan.FromSeconds(180));

        var one = await TestJobs.WaitAsync(server.Admin, single);
        var four = await TestJobs.WaitAsync(server.Admin, sharded);
        Assert.Equal("failed", one.Status());
        Assert.Equal("failed", four.Status());
        const string Failure = "1 of 16 hosts failed (h07); first failure: task 'break one host': boom on h07";
        Assert.Contains(Failure, one.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains(Failure, four.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);

        // /hosts: the same hosts, figures and failure messages.
        var oneHosts = await HostsAsync(server.Admin, single);
        var fourHosts = await HostsAsync(server.Admin, sharded);
        Assert.Equal(16, oneHosts.Count);
        Assert.Equal(oneHosts, fourHosts);
        Assert.Contains("boom on h07", oneHosts["h07"], StringComparison.Ordinal);

        // PLAY RECAP: one run's equals the union of the four shards' (each shard's own ansible output), and /hosts.
        var recap = RecapFromOutput(singleEvents);
        var shardRecaps = new Dictionary<string, Recap>(StringComparer.Ordinal);
        for (var shard = 0; shard < 4; shard++)
        {
            var index = shard;
            foreach (var (host, figures) in RecapFromOutput(shardedEvents.Where(e => Shard(e) == index)))
                shardRecaps.Add(host, figures);
        }
        Assert.Equal(recap.OrderBy(p => p.Key, StringComparer.Ordinal), shardRecaps.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(1, recap["h03"].Ok - recap["h01"].Ok); // the skipped task: ran on h03 only
        Assert.True(recap["h01"].Skipped > 0);
        var apiFigures = (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{sharded}/hosts")).EnumerateObject()
            .ToDictionary(p => p.Name, p => FromApi(p.Value.GetProperty("stats")));
        Assert.Equal(recap.OrderBy(p => p.Key, StringComparer.Ordinal), apiFigures.OrderBy(p => p.Key, StringComparer.Ordinal));

        // The parent shows its children: contiguous shards of 4 hosts, the one with h07 failed.
        var children = four.GetProperty("children").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2, 3], children.Select(c => c.GetProperty("shard_index").GetInt32()));
        Assert.All(children, c => Assert.Equal(4, c.GetProperty("hosts").GetInt32()));
        Assert.Equal(["succeeded", "failed", "succeeded", "succeeded"], children.Select(c => c.GetProperty("status").GetString()));
        var child = await TestJobs.GetAsync(server.Admin, children[1].GetProperty("job_id").GetString()!);
        Assert.Equal(sharded, child.GetProperty("parent_id").GetString());

        // The parent's stream carries every shard's events, each shard's in its own order and complete.
        Assert.Equal(Enumerable.Range(1, shardedEvents.Count).Select(i => (long)i), shardedEvents.Select(e => e.Id));
        for (var shard = 0; shard < 4; shard++)
        {
            var seqs = shardedEvents.Where(e => Shard(e) == shard && e.Body.TryGetProperty("ansible_seq", out _))
                .Select(e => e.Body.GetProperty("ansible_seq").GetInt64()).ToList();
            Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
            Assert.Contains(shardedEvents, e => Shard(e) == shard && e.Type == "ansible.stats");
            Assert.Contains(shardedEvents, e => Shard(e) == shard && e.Type == "ansible.shard_finished");
        }
        Assert.Equal(singleEvents.Count(e => e.Type == "ansible.runner_ok"), shardedEvents.Count(e => e.Type == "ansible.runner_ok"));
        Assert.Contains(shardedEvents, e => e.Type == "ansible.runner_failed" && e.Str("host") == "h07" && Shard(e) == 1);
        var summary = shardedEvents.Last(e => e.Type == "ansible.summary" && Shard(e) is null);
        Assert.Equal(2, summary.Body.GetProperty("exit_code").GetInt32());
        Assert.Equal(16, summary.Body.GetProperty("hosts").GetInt32());
    }

    [Fact]
    public async Task With_fail_fast_one_failed_shard_cancels_the_others()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("slow.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - name: break the first host
                  fail: {msg: early}
                  when: inventory_hostname == 'h1'
                - name: wait
                  command: sleep 120
            """));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook",
            new { playbook = "slow.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3", "h4"])), shards = 4, fail_fast = true });

        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(90));
        Assert.Equal("failed", job.Status());
        var children = job.GetProperty("children").EnumerateArray().ToList();
        Assert.Equal(["failed", "cancelled", "cancelled", "cancelled"], children.Select(c => c.GetProperty("status").GetString()));
        Assert.Contains("fail_fast (shard 0 failed)", children[1].GetProperty("error").GetString(), StringComparison.Ordinal);
        var detail = job.Step("playbook").GetProperty("detail").GetString()!;
        Assert.Contains("1 of", detail, StringComparison.Ordinal);
        Assert.Contains("early", detail, StringComparison.Ordinal);
        Assert.Contains("4 of 4 shards did not succeed", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_fail_fast_the_other_shards_run_to_the_end()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("site.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - name: break the first host
                  fail: {msg: early}
                  when: inventory_hostname == 'h1'
                - name: wait a little
                  command: sleep 2
                - name: after
                  debug: {msg: done}
            """));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook",
            new { playbook = "site.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3"])), shards = 3 });
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(90));
        Assert.Equal("failed", job.Status());
        Assert.Equal(["failed", "succeeded", "succeeded"], job.GetProperty("children").EnumerateArray().Select(c => c.GetProperty("status").GetString()));
        var hosts = await HostsAsync(server.Admin, id);
        Assert.Equal(["h1", "h2", "h3"], hosts.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task More_shards_than_hosts_make_one_shard_per_host()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n"));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3"])), shards = 8 });
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(90));
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal("playbook ran on 3 hosts in 3 shards, 0 changed", job.Step("playbook").GetProperty("detail").GetString());
        Assert.Equal([1, 1, 1], job.GetProperty("children").EnumerateArray().Select(c => c.GetProperty("hosts").GetInt32()));
    }

    [Fact]
    public async Task Cancelling_the_parent_cancels_its_shards()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("slow.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - name: wait
                  command: sleep 120
            """));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook",
            new { playbook = "slow.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3", "h4"])), shards = "auto" });
        // auto: one shard per Ansible:HostsPerAutoShard (50) hosts, so one shard here; wait until it runs ansible.
        await ReadEventsAsync(server.Admin, id, e => e.Type == "ansible.task_start", timeout: TimeSpan.FromSeconds(60));

        using var cancel = await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(60));
        Assert.Equal("cancelled", job.Status());
        var children = job.GetProperty("children").EnumerateArray().ToList();
        Assert.Single(children);
        var child = await TestJobs.WaitAsync(server.Admin, children[0].GetProperty("job_id").GetString()!, timeout: TimeSpan.FromSeconds(60));
        Assert.Equal("cancelled", child.Status());
        Assert.Contains($"parent job {id}", child.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"shards": 4, "limit": "h1"}""", "cannot be combined with limit")]
    [InlineData("""{"shards": 65}""", "between 1 and 64, or \"auto\"")]
    [InlineData("""{"shards": "many"}""", "between 1 and 64, or \"auto\"")]
    [InlineData("""{"shards": 2, "playbook": "once.yml"}""", "the playbook cannot be sharded: task 'tell the team' uses run_once")]
    [InlineData("""{"shards": 2, "playbook": "serial.yml"}""", "the playbook cannot be sharded: play 'rolling' sets serial")]
    [InlineData("""{"shards": 2, "playbook": "marked.yml"}""", "the playbook cannot be sharded: play 'marked' is marked opsgate_shardable: false")]
    [InlineData("""{"shards": 2, "playbook": "add.yml"}""", "task 'grow' uses add_host (ansible runs it once per play")]
    [InlineData("""{"shards": 2, "playbook": "fatal.yml"}""", "play 'all' sets any_errors_fatal")]
    [InlineData("""{"shards": 2, "playbook": "percent.yml"}""", "play 'all' sets max_fail_percentage")]
    [InlineData("""{"shards": 2, "playbook": "first.yml"}""", "play 'web[0]' picks hosts by position")]
    [InlineData("""{"shards": 2, "playbook": "endplay.yml"}""", "runs meta: end_play with a condition")]
    [InlineData("""{"shards": 2, "playbook": "included.yml"}""", "task 'wait here' uses pause")]
    [InlineData("""{"shards": 2, "playbook": "role.yml"}""", "task 'stop all' sets any_errors_fatal (a failure would not stop the hosts of other shards) (in role 'strict')")]
    [InlineData("""{"shards": 2, "playbook": "imports.yml"}""", "task 'grow' uses add_host")]
    [InlineData("""{"shards": 2, "playbook": "clear.yml"}""", "task 'forgive' runs meta: clear_host_errors (it clears the errors of every host in the play, also those of other shards)")]
    [InlineData("""{"shards": 2, "playbook": "local.yml"}""", "play 'report' (hosts: localhost) may run hosts that the earlier play 'all' (hosts: all) does not")]
    [InlineData("""{"shards": 2, "playbook": "templated.yml"}""", "play 'db' (hosts: {{ group }}) may run hosts that the earlier play 'web' (hosts: {{ group }}) does not")]
    [InlineData("""{"shards": 2, "playbook": "unread.yml"}""", "play 'all' (hosts: all) may run hosts that the earlier playbook imported from '{{ which }}.yml' (hosts: unknown) does not")]
    public async Task Sharding_is_refused_at_submit_with_the_reason(string parameters, string reason)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks,
            ("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n"),
            ("once.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: tell the team\n      debug: {msg: once}\n      run_once: true\n"),
            ("serial.yml", "- name: rolling\n  hosts: all\n  serial: 2\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n"),
            ("marked.yml", "- name: marked\n  hosts: all\n  vars: {opsgate_shardable: false}\n  tasks:\n    - debug: {msg: hi}\n"),
            ("add.yml", "- hosts: all\n  tasks:\n    - name: grow\n      ansible.builtin.add_host: {name: extra}\n"),
            ("fatal.yml", "- hosts: all\n  any_errors_fatal: true\n  tasks:\n    - debug: {msg: hi}\n"),
            ("percent.yml", "- hosts: all\n  max_fail_percentage: 20\n  tasks:\n    - debug: {msg: hi}\n"),
            ("first.yml", "- hosts: web[0]\n  tasks:\n    - debug: {msg: hi}\n"),
            ("endplay.yml", "- hosts: all\n  tasks:\n    - meta: end_play\n      when: inventory_hostname == 'h1'\n"),
            ("included.yml", "- hosts: all\n  tasks:\n    - include_tasks: tasks/wait.yml\n"),
            ("role.yml", "- hosts: all\n  roles: [strict]\n"),
            ("imports.yml", "- import_playbook: add.yml\n"),
            ("clear.yml", "- hosts: all\n  tasks:\n    - name: forgive\n      meta: clear_host_errors\n"),
            ("local.yml", "- hosts: all\n  tasks:\n    - debug: {msg: hi}\n- name: report\n  hosts: localhost\n  tasks:\n    - debug: {msg: done}\n"),
            ("templated.yml", "- name: web\n  hosts: '{{ group }}'\n  vars: {group: web}\n  tasks: []\n- name: db\n  hosts: '{{ group }}'\n  vars: {group: db}\n  tasks: []\n"),
            ("unread.yml", "- import_playbook: '{{ which }}.yml'\n- hosts: all\n  tasks: []\n"));
        Directory.CreateDirectory(Path.Combine(playbooks.Path, "tasks"));
        await File.WriteAllTextAsync(Path.Combine(playbooks.Path, "tasks", "wait.yml"), "- name: wait here\n  pause: {seconds: 1}\n");
        Directory.CreateDirectory(Path.Combine(playbooks.Path, "roles", "strict", "tasks"));
        await File.WriteAllTextAsync(Path.Combine(playbooks.Path, "roles", "strict", "tasks", "main.yml"),
            "- name: stop all\n  command: /bin/true\n  any_errors_fatal: true\n");
        var given = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(parameters)!;
        given.TryAdd("playbook", JsonSerializer.SerializeToElement("site.yml"));
        given["inventory"] = JsonSerializer.SerializeToElement(await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2"])));

        using var response = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = given }, OpsgateServer.Json);
        var detail = await Problem.AssertAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("shards", detail, StringComparison.Ordinal);
        Assert.Contains(reason, detail, StringComparison.Ordinal);
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs")).GetProperty("items").EnumerateArray());
    }

    /// <summary>The shardability check reads the playbook with the guarded loader: nesting that would overflow YamlDotNet's stack, or aliases, are left to ansible.</summary>
    [Fact]
    public async Task A_hostile_playbook_neither_crashes_the_submit_nor_the_server()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks,
            ("deep.yml", new string('[', 100_000) + new string(']', 100_000) + "\n"),
            ("bomb.yml", "- hosts: all\n  vars:\n    a: &a [x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n    c: [*b, *b, *b, *b, *b, *b, *b, *b]\n  tasks: []\n"));
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2"]));
        foreach (var playbook in new[] { "deep.yml", "bomb.yml" })
        {
            var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook, inventory, shards = 2 });
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(90));
            Assert.True(JobStatusIsFinal(job.Status()), job.ToString());
        }
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/health/ready")).StatusCode);
    }

    private static bool JobStatusIsFinal(string? status) => status is "succeeded" or "failed";

    [Fact]
    public async Task Two_servers_on_one_postgres_both_run_shards()
    {
        using var playbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(playbooks.Path, "site.yml"), """
            - hosts: all
              gather_facts: false
              tasks:
                - name: hold the slot a moment
                  command: sleep 3
                - name: greet
                  debug: {msg: "hello {{ inventory_hostname }}"}
            """);
        await using var postgres = await PostgresDatabase.CreateAsync();
        string[] args = ["--Database:Provider=postgres", $"--Database:ConnectionString={postgres.ConnectionString}", "--Jobs:ChildWorkers=1",
            $"--Ansible:PlaybookDirectory={playbooks.Path}"];
        await using var a = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        await using var b = await OpsgateServer.StartAsync(Provider.Sqlite, args);

        var id = await TestJobs.SubmitAsync(a.Admin, "ansible-playbook", new { playbook = "site.yml", inventory = await StoreInventoryAsync(a.Admin, Inventory(["h1", "h2", "h3", "h4"])), shards = 4 });
        var job = await TestJobs.WaitAsync(b.Admin, id, timeout: TimeSpan.FromSeconds(120));
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(4, (await HostsAsync(b.Admin, id)).Count);

        await using var db = await a.OpenDatabaseAsync();
        var workers = (await db.QueryAsync<string>(
                "SELECT e.data FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.parent_id = @id AND e.type = 'job.started'", new { id }))
            .Select(d => JsonDocument.Parse(d).RootElement.GetProperty("worker").GetString()).ToList();
        Assert.Equal(4, workers.Count);
        Assert.Equal(2, workers.Distinct().Count());
    }

    private static int? Shard(SseEvent e) => e.Body.ValueKind == JsonValueKind.Object && e.Body.TryGetProperty("shard", out var s) ? s.GetInt32() : null;

    /// <summary>/hosts without the job-specific fields: per host its figures and failures, as text to compare.</summary>
    private static async Task<Dictionary<string, string>> HostsAsync(HttpClient client, string id)
    {
        var hosts = await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
        return hosts.EnumerateObject().ToDictionary(p => p.Name, p =>
        {
            var stats = p.Value.GetProperty("stats");
            return $"{FromApi(stats)} complete={stats.GetProperty("complete").GetBoolean()} failures={p.Value.GetProperty("failures").GetRawText()}";
        }, StringComparer.Ordinal);
    }
}
