using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>ansible.run over real SSH: sshd on a loopback port, started and killed by the test.</summary>
public sealed class AnsibleSshTests
{
    // A long DataDir: the run directory under it is too long for ssh's control sockets, which then go elsewhere.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_playbook_runs_over_ssh_and_leaves_no_connection_behind(bool longDataDir)
    {
        await using var ssh = await SshTarget.StartAsync();
        using var playbooks = new TempDir();
        string[] args = longDataDir ? [$"--DataDir={Path.Combine(playbooks.Path, new string('d', 60))}"] : [];
        await using var server = await StartAsync(Provider.Sqlite, playbooks, args, ("ssh.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - ping:
                - command: id -un
                  register: who
                - debug: {msg: "{{ inventory_hostname }} is {{ who.stdout }}"}
            """));
        var inventory = await StoreInventoryAsync(server.Admin, $"all:\n  hosts:\n    s1: {ssh.HostVars}\n    s2: {ssh.HostVars}\n");

        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "ssh.yml", inventory });
        var events = await ReadEventsAsync(server.Admin, id);
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "s2 is root");

        var recap = RecapFromOutput(events);
        var results = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
        Assert.Equal(2, recap.Count);
        foreach (var (host, figures) in recap)
            Assert.Equal(figures, FromApi(results.GetProperty(host).GetProperty("stats")));
        Assert.Equal(3, recap["s1"].Ok);

        // ssh's ControlPersist masters were told to exit: sshd has no session left.
        var watch = Stopwatch.StartNew();
        while (ssh.Sessions().Count > 0)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"sshd still has sessions {string.Join(", ", ssh.Sessions())}");
            await Task.Delay(50);
        }
    }
}
