using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// A sharded run equals one run: each playbook runs raw (<c>ansible-playbook</c> over the whole inventory), then
/// through Opsgate with 1 and with 3 shards; per-host figures, job status and exit code must all agree with the raw run.
/// </summary>
public sealed class ShardParityTests
{
    /// <summary>Six local hosts, and h7 that no SSH reaches (a closed port): tasks that need a connection find it unreachable.</summary>
    private static string Hosts() =>
        Inventory(["h1", "h2", "h3", "h4", "h5", "h6"], $"h7: {{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {ClosedPort()}, ansible_user: nobody}}");

    public static TheoryData<string> Playbooks => [.. Cases.Keys];

    private static readonly Dictionary<string, string> Cases = new(StringComparer.Ordinal)
    {
        // A play for the implicit localhost runs once in one run; before, every shard ran it again.
        ["localhost"] = """
            - hosts: localhost
              gather_facts: false
              tasks:
                - name: local one
                  debug: {msg: local}
                - name: local two
                  debug: {msg: again}
            """,
        // Every host of the second shard (h4, h5) fails in the first play, so that shard ends there; one run goes on,
        // but without h4 and h5, and the later plays run only hosts of the first: the same figures.
        ["shard-ends-early"] = """
            - hosts: all
              gather_facts: false
              tasks:
                - name: break the middle shard
                  fail: {msg: "boom {{ inventory_hostname }}"}
                  when: inventory_hostname in ['h4', 'h5']
            - hosts: all
              gather_facts: false
              tasks:
                - debug: {msg: second}
            - hosts: h6
              gather_facts: false
              tasks:
                - debug: {msg: "only h6"}
            """,
        // Rescued and ignored failures, an unreachable host that is ignored: ansible says exit 0, no host failed.
        ["rescue-ignore"] = """
            - hosts: all
              gather_facts: false
              tasks:
                - name: guarded
                  block:
                    - name: may break
                      fail: {msg: "broken {{ inventory_hostname }}"}
                      when: inventory_hostname in ['h1', 'h4']
                  rescue:
                    - name: recover
                      debug: {msg: recovered}
                - name: tolerated
                  fail: {msg: "tolerated {{ inventory_hostname }}"}
                  ignore_errors: true
                  when: inventory_hostname == 'h2'
                - name: loop
                  debug: {msg: "{{ item }}"}
                  loop: [1, 2]
                - name: reach out
                  ping:
                  ignore_unreachable: true
                  when: inventory_hostname in ['h5', 'h7']
                - name: after
                  debug: {msg: after}
            """,
        // An ERROR after the first play: ansible stops with exit code 1 and prints no RECAP.
        ["error"] = """
            - hosts: all
              gather_facts: false
              tasks:
                - debug: {msg: first}
            - hosts: all
              gather_facts: false
              vars_files: [no-such-file.yml]
              tasks:
                - debug: {msg: second}
            """,
        // Failed and unreachable hosts: 4 wins over 2, as ansible ranks them.
        ["failed-unreachable"] = """
            - hosts: all
              gather_facts: false
              tasks:
                - name: break h2
                  fail: {msg: "boom {{ inventory_hostname }}"}
                  when: inventory_hostname == 'h2'
                - name: reach out
                  ping:
                  when: inventory_hostname in ['h6', 'h7']
            """,
        // A play for one host: the other shards match no host at all, and still complete.
        ["one-host"] = """
            - hosts: h2
              gather_facts: false
              tasks:
                - debug: {msg: "just h2"}
            """,
    };

    [Theory]
    [MemberData(nameof(Playbooks))]
    public async Task A_sharded_run_gives_what_one_ansible_playbook_run_gives(string name)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("site.yml", Cases[name]));
        var inventory = Hosts();
        var raw = await RawAsync(inventory, Path.Combine(playbooks.Path, "site.yml"));
        var stored = await StoreInventoryAsync(server.Admin, inventory);

        var one = await RunAsync(server.Admin, stored, shards: 1);
        var three = await RunAsync(server.Admin, stored, shards: 3);

        foreach (var (run, label) in new[] { (one, "1 shard"), (three, "3 shards") })
        {
            Assert.True(raw.ExitCode == run.ExitCode, $"{name}, {label}: exit code {run.ExitCode}, ansible-playbook gave {raw.ExitCode}\n{raw.Output}");
            Assert.True((raw.ExitCode == 0 ? "succeeded" : "failed") == run.Status, $"{name}, {label}: status {run.Status} for exit code {raw.ExitCode}");
            // No RECAP (an ERROR): the figures counted from the events must still agree between the runs.
            if (raw.Recap.Count > 0)
                Assert.Equal(raw.Recap.OrderBy(p => p.Key, StringComparer.Ordinal), run.Hosts.OrderBy(p => p.Key, StringComparer.Ordinal));
            Assert.Equal(raw.Recap.Count > 0, run.Complete);
        }
        Assert.Equal(one.Hosts.OrderBy(p => p.Key, StringComparer.Ordinal), three.Hosts.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(one.Summary.GetProperty("failed_hosts").ToString(), three.Summary.GetProperty("failed_hosts").ToString());
        Assert.Equal(one.Summary.GetProperty("unreachable_hosts").ToString(), three.Summary.GetProperty("unreachable_hosts").ToString());
        Assert.Equal(3, three.Summary.GetProperty("shards").GetArrayLength());

        switch (name)
        {
            case "localhost":
                Assert.Equal(2, three.Hosts["localhost"].Ok); // once, not once per shard
                break;
            case "rescue-ignore":
                Assert.Equal(0, raw.ExitCode);
                Assert.Equal(1, raw.Recap["h1"].Rescued);
                var failures = await FailuresAsync(server.Admin, three.Id);
                Assert.Contains(failures["h1"], f => f.GetProperty("task").GetString() == "may break" && f.GetProperty("rescued").GetBoolean() && !f.GetProperty("ignored").GetBoolean());
                Assert.Contains(failures["h2"], f => f.GetProperty("task").GetString() == "tolerated" && f.GetProperty("ignored").GetBoolean() && !f.GetProperty("rescued").GetBoolean());
                Assert.Contains(failures["h7"], f => f.GetProperty("kind").GetString() == "unreachable" && f.GetProperty("ignored").GetBoolean());
                break;
            case "shard-ends-early":
                Assert.Equal(2, raw.ExitCode);
                Assert.Equal(2, three.Hosts["h6"].Ok);
                Assert.Equal([1, 1], [three.Hosts["h4"].Failed, three.Hosts["h5"].Failed]);
                break;
            case "error":
                Assert.Equal(1, raw.ExitCode);
                break;
            case "failed-unreachable":
                Assert.Equal(4, raw.ExitCode);
                break;
            case "one-host":
                Assert.Equal(["h2"], three.Hosts.Keys);
                break;
        }
    }

    /// <summary>
    /// ansible ends the playbook after a play in which every host failed. One run over all the hosts stops after the
    /// first play (its only host failed); a shard without that host would go on with the second play. So the playbook
    /// is refused for sharding at submit, naming both plays; one shard gives what ansible gives.
    /// </summary>
    [Fact]
    public async Task A_play_for_hosts_an_earlier_play_lacks_is_refused_for_shards()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("site.yml", """
            - name: first
              hosts: h1
              gather_facts: false
              tasks:
                - fail: {msg: boom}
            - name: second
              hosts: all
              gather_facts: false
              tasks:
                - debug: {msg: second}
            """));
        var inventory = Inventory(["h1", "h2", "h3", "h4"]);
        var raw = await RawAsync(inventory, Path.Combine(playbooks.Path, "site.yml"));
        Assert.Equal(2, raw.ExitCode);
        Assert.Equal(["h1"], raw.Recap.Keys); // the second play never ran
        var stored = await StoreInventoryAsync(server.Admin, inventory);

        var one = await RunAsync(server.Admin, stored, shards: 1);
        Assert.Equal(raw.Recap, one.Hosts);
        using var response = await server.Admin.PostAsJsonAsync("/api/v1/jobs",
            new { type = "ansible-playbook", @params = new { playbook = "site.yml", inventory = stored, shards = 2 } }, OpsgateServer.Json);
        var detail = await Problem.AssertAsync(response, System.Net.HttpStatusCode.BadRequest);
        Assert.Contains("play 'second' (hosts: all) may run hosts that the earlier play 'first' (hosts: h1) does not", detail, StringComparison.Ordinal);
        Assert.Contains("run it with shards: 1", detail, StringComparison.Ordinal);
    }

    private sealed record Run(string Id, string Status, int? ExitCode, bool Complete, Dictionary<string, Recap> Hosts, JsonElement Summary);

    private static async Task<Run> RunAsync(HttpClient client, string inventory, int shards)
    {
        var id = await TestJobs.SubmitAsync(client, "ansible-playbook", new { playbook = "site.yml", inventory, shards });
        var job = await TestJobs.WaitAsync(client, id, timeout: TimeSpan.FromSeconds(180));
        var output = job.Step("playbook").GetProperty("output");
        Assert.True(output.ValueKind == JsonValueKind.Object, $"job {id} ({job.Status()}) has no step output: {job}");
        var hosts = (await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts")).EnumerateObject()
            .ToDictionary(p => p.Name, p => FromApi(p.Value.GetProperty("stats")), StringComparer.Ordinal);
        int? exit = output.GetProperty("exit_code").ValueKind == JsonValueKind.Number ? output.GetProperty("exit_code").GetInt32() : null;
        return new Run(id, job.Status(), exit, output.GetProperty("complete").GetBoolean(), hosts, output);
    }

    private static async Task<Dictionary<string, List<JsonElement>>> FailuresAsync(HttpClient client, string id) =>
        (await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts")).EnumerateObject()
            .Where(p => p.Value.GetProperty("failures").ValueKind == JsonValueKind.Array)
            .ToDictionary(p => p.Name, p => p.Value.GetProperty("failures").EnumerateArray().ToList(), StringComparer.Ordinal);

    private sealed record RawRun(int ExitCode, Dictionary<string, Recap> Recap, string Output);

    /// <summary>ansible-playbook itself, over the whole inventory, with nothing from the machine's ansible configuration.</summary>
    private static async Task<RawRun> RawAsync(string inventory, string playbook)
    {
        using var dir = new TempDir();
        var inventoryFile = Path.Combine(dir.Path, "inventory.yml");
        await File.WriteAllTextAsync(inventoryFile, inventory);
        var config = Path.Combine(dir.Path, "ansible.cfg");
        await File.WriteAllTextAsync(config, "");
        var psi = new ProcessStartInfo("ansible-playbook") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { playbook, "--inventory=" + inventoryFile })
            psi.ArgumentList.Add(arg);
        psi.Environment["ANSIBLE_CONFIG"] = config;
        psi.Environment["ANSIBLE_HOST_KEY_CHECKING"] = "False";
        psi.Environment["ANSIBLE_NOCOLOR"] = "1";
        psi.Environment["ANSIBLE_RETRY_FILES_ENABLED"] = "False";
        psi.Environment["ANSIBLE_LOCAL_TEMP"] = dir.Path;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        var text = await stdout;
        return new RawRun(process.ExitCode, text.Contains("PLAY RECAP", StringComparison.Ordinal) ? RecapFromText(text) : [], text + await stderr);
    }
}
