using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>An inline playbook (<c>playbook_yaml</c>) in a runbook: Opsgate's templates and ansible's Jinja side by side.</summary>
public sealed class InlinePlaybookTests
{
    [Fact]
    public async Task Jinja_inside_raw_reaches_ansible_untouched_beside_opsgates_own_templates()
    {
        using var playbooks = new TempDir();
        using var runbooks = new TempDir();
        using var machines = new TempDir();
        // Block scalar: the playbook is one string, rendered by Opsgate ({{ params.greeting }}), then run by ansible
        // (the raw blocks' {{ inventory_hostname }} and {{ out_dir }}, a host variable).
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "greet.yaml"), """
            name: greet
            parameters:
              - {name: greeting, type: string, required: true}
              - {name: inventory, type: string, required: true}
            steps:
              - name: playbook
                kind: ansible.run
                with:
                  inventory: "{{ params.inventory }}"
                  playbook_yaml: |
                    - hosts: all
                      gather_facts: false
                      tasks:
                        - copy:
                            content: "{{ params.greeting }} from {% raw %}{{ inventory_hostname }}{% endraw %}"
                            dest: "{% raw %}{{ out_dir }}/{{ inventory_hostname }}.txt{% endraw %}"
            """);
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var inventory = await StoreInventoryAsync(server.Admin, Inventory([], $"h1: {{out_dir: {machines.Path}}}", $"h2: {{out_dir: {machines.Path}}}"));

        var id = await TestJobs.SubmitAsync(server.Admin, "greet", new { greeting = "hello", inventory });
        var job = await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(60));

        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal("hello from h1", await File.ReadAllTextAsync(Path.Combine(machines.Path, "h1.txt")));
        Assert.Equal("hello from h2", await File.ReadAllTextAsync(Path.Combine(machines.Path, "h2.txt")));
    }
}
