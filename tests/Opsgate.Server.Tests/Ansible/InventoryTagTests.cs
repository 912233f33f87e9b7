using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Opsgate.Server.Ansible;
using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// <c>!unsafe</c> and <c>!vault</c> values of an inventory reach ansible as they were written, also where Opsgate writes the
/// inventory again (a shard's inventory, an inventory sourced from a project): the real ansible-inventory and ansible-playbook.
/// </summary>
public sealed class InventoryTagTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(120);

    /// <summary>Prints the values ansible sees: templated, each !unsafe string would fail (undefined) or change.</summary>
    private const string Show = """
        - hosts: all
          gather_facts: false
          tasks:
            - debug: {msg: "x={{ x }} g={{ g }} deep={{ nested[1].k }} v={{ v is vault_encrypted }} pw={{ db_password is vault_encrypted }}"}
            - debug: {msg: "y={{ y }}"}
              when: y is defined
        """;

    private const string Expected = "x={{ not_templated }} g={{ g_raw }} deep={% raw %}{{ deep }} v=True pw=True";

    /// <summary>
    /// An inventory with !unsafe strings (a host var, a group var, one deep in a structure) and two !vault values made by
    /// the real ansible-vault, one of them in a variable whose name makes it secret (sealed in the secret store).
    /// </summary>
    private static async Task<string> TaggedInventoryAsync(params string[] hosts)
    {
        var vault = await EncryptAsync("s3cret-in-vault");
        var indented = string.Join("\n", vault.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "        " + l.Trim()));
        var text = new System.Text.StringBuilder("all:\n  vars:\n    " + LocalVars.Replace(", ", "\n    ", StringComparison.Ordinal) + "\n");
        text.Append("    g: !unsafe \"{{ g_raw }}\"\n    nested:\n      - plain\n      - k: !unsafe \"{% raw %}{{ deep }}\"\n");
        text.Append("    db_password: !vault |\n").Append(indented).Append('\n');
        text.Append("  hosts:\n");
        foreach (var host in hosts)
            text.Append("    ").Append(host).Append(":\n      x: !unsafe \"{{ not_templated }}\"\n      v: !vault |\n").Append("  " + indented.Replace("\n", "\n  ", StringComparison.Ordinal)).Append('\n');
        return text.ToString();
    }

    [Fact]
    public async Task A_shard_inventory_written_from_the_expansion_carries_the_tags_and_ansible_reads_it_back_the_same()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var expander = server.App.Services.GetRequiredService<InventoryExpander>();
        var source = await expander.ExpandAsync(await TaggedInventoryAsync("h1", "h2"), CancellationToken.None);
        // What ansible-inventory --list --export prints for the tags (ansible-core 2.14).
        Assert.Equal("{{ not_templated }}", source.List["_meta"]!["hostvars"]!["h1"]!["x"]!["__ansible_unsafe"]!.GetValue<string>());
        Assert.StartsWith("$ANSIBLE_VAULT;1.1;AES256\n", source.List["all"]!["vars"]!["db_password"]!["__ansible_vault"]!.GetValue<string>(), StringComparison.Ordinal);

        var yaml = InventoryYaml.FromExpansion(source.List);
        Assert.Contains("x: !unsafe \"{{ not_templated }}\"", yaml, StringComparison.Ordinal);
        Assert.Contains("v: !vault |", yaml, StringComparison.Ordinal);
        Assert.True(JsonNode.DeepEquals(source.List, (await expander.ExpandAsync(yaml, CancellationToken.None)).List), yaml);

        // One shard's: only h2, the group's tagged vars kept.
        var shard = InventoryYaml.FromExpansion(source.List, new HashSet<string>(["h2"]));
        var expanded = (await expander.ExpandAsync(shard, CancellationToken.None)).List;
        Assert.Equal(["h2"], InventoryExpander.HostsOf(expanded));
        Assert.True(JsonNode.DeepEquals(source.List["all"]!["vars"], expanded["all"]!["vars"]), shard);
        Assert.True(JsonNode.DeepEquals(source.List["_meta"]!["hostvars"]!["h2"], expanded["_meta"]!["hostvars"]!["h2"]), shard);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_stored_inventory_run_whole_and_in_two_shards_prints_unsafe_values_literally_and_keeps_vault_values_encrypted(Provider provider)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(provider, playbooks, ("show.yml", Show));
        // vars merged into hosts: the merged YAML keeps the tag too.
        var inventory = await StoreInventoryAsync(server.Admin, await TaggedInventoryAsync("h1", "h2", "h3"), vars: "all:\n  y: !unsafe '{{ y_raw }}'\n");
        foreach (var shards in new[] { 1, 2 })
        {
            var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "show.yml", inventory, shards });
            var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
            Assert.True(job.Status() == "succeeded", $"shards: {shards}: {job}");
            Assert.Equal(["h1", "h2", "h3"], events.Where(e => e.Type == "ansible.runner_ok" && e.Str("message") == Expected).Select(e => e.Str("host")).Order(StringComparer.Ordinal));
            Assert.Equal(3, events.Count(e => e.Type == "ansible.runner_ok" && e.Str("message") == "y={{ y_raw }}"));
        }
    }

    [Fact]
    public async Task An_inventory_sourced_from_a_project_keeps_the_tags_in_its_yaml_and_runs_with_them()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("tagged", ("inventory/hosts.yml", await TaggedInventoryAsync("h1", "h2")));
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [repo.AllowArg], ("show.yml", Show));
        var project = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "cmdb", git_repo = repo.Bare }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, project.StatusCode);
        var created = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "fleet", source = new { project = "cmdb", path = "inventory/hosts.yml" } }, OpsgateServer.Json);
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());

        var yaml = (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/fleet")).GetProperty("hosts").GetString()!;
        Assert.Contains("x: !unsafe \"{{ not_templated }}\"", yaml, StringComparison.Ordinal);
        Assert.Contains("v: !vault |", yaml, StringComparison.Ordinal);
        foreach (var shards in new[] { 1, 2 })
        {
            var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "show.yml", inventory = "fleet", shards });
            var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
            Assert.True(job.Status() == "succeeded", $"shards: {shards}: {job} {string.Join("\n", events.Where(e => e.Type == "ansible.output").Select(e => e.Str("text")))}");
            Assert.Equal(["h1", "h2"], events.Where(e => e.Type == "ansible.runner_ok" && e.Str("message") == Expected).Select(e => e.Str("host")).Order(StringComparer.Ordinal));
        }
    }

    /// <summary>A value encrypted by the real ansible-vault (<c>encrypt_string</c>): the <c>!vault |</c> block it prints, without the name.</summary>
    private static async Task<string> EncryptAsync(string secret)
    {
        using var dir = new TempDir();
        var password = Path.Combine(dir.Path, "vault-pass");
        await File.WriteAllTextAsync(password, "not-given-to-opsgate");
        var psi = new ProcessStartInfo("ansible-vault") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var arg in new[] { "encrypt_string", "--vault-password-file", password, secret })
            psi.ArgumentList.Add(arg);
        psi.Environment["HOME"] = dir.Path;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await stderr);
        var text = await stdout;
        Assert.StartsWith("!vault |", text, StringComparison.Ordinal);
        return text["!vault |".Length..];
    }
}
