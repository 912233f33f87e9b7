using System.Net;
using System.Net.Http.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>Repositories on the server's own disk (paths and file:// URLs) only under Ansible:LocalRepositoryRoots, for projects and the inventories sourced from them.</summary>
public sealed class LocalRepositoryTests
{
    private const string Setting = "Ansible:LocalRepositoryRoots";

    private static Task<HttpResponseMessage> CreateProjectAsync(OpsgateServer server, string name, string gitRepo) =>
        server.Admin.PostAsJsonAsync("/api/v1/projects", new { name, git_repo = gitRepo, @ref = "main" }, OpsgateServer.Json);

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Without_the_setting_no_local_repository_is_accepted_and_the_400_names_the_setting(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", "- hosts: all\n  tasks: []\n"));
        await using var server = await OpsgateServer.StartAsync(provider);

        foreach (var url in new[] { repo.Bare, "file://" + repo.Bare })
        {
            var detail = await Problem.AssertAsync(await CreateProjectAsync(server, "local", url), HttpStatusCode.BadRequest);
            Assert.Contains(Setting, detail, StringComparison.Ordinal);
            Assert.Contains("git_repo", detail, StringComparison.Ordinal);
        }
        Assert.Empty((await server.Admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/v1/projects")).GetProperty("items").EnumerateArray());
        // Nothing was fetched: the refusal comes before git touches the repository.
        Assert.False(Directory.Exists(Path.Combine(server.DataDir, "projects")) && Directory.EnumerateDirectories(Path.Combine(server.DataDir, "projects"), "*.git").Any());
    }

    [Fact]
    public async Task Under_a_root_a_path_and_a_file_url_are_accepted_and_a_link_or_dotdot_out_of_the_root_is_refused()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: local}\n"));
        using var root = new TempDir();
        using var outside = await GitRepo.CreateAsync();
        await outside.CommitAsync("secret", ("secret.yml", "- hosts: all\n  tasks: []\n"));
        // The repository inside the root (by a link to its real place, which is inside the root's tree only through the link) ...
        var inside = Path.Combine(root.Path, "repos");
        Directory.CreateDirectory(inside);
        var copy = Path.Combine(inside, "site.git");
        CopyDirectory(repo.Bare, copy);
        // ... and a link in the root that leads out of it, to a repository elsewhere.
        File.CreateSymbolicLink(Path.Combine(inside, "escape.git"), outside.Bare);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--{Setting}:0={root.Path}"]);

        Assert.Equal(HttpStatusCode.Created, (await CreateProjectAsync(server, "by-path", copy)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await CreateProjectAsync(server, "by-url", "file://" + copy)).StatusCode);
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { project = "by-url", playbook = "site.yml", inventory });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id, timeout: TimeSpan.FromSeconds(120))).Status());

        foreach (var url in new[] { Path.Combine(inside, "escape.git"), "file://" + Path.Combine(inside, "escape.git"), outside.Bare, $"{inside}/../../{Path.GetFileName(Path.GetDirectoryName(outside.Bare))}/origin.git" })
        {
            var detail = await Problem.AssertAsync(await CreateProjectAsync(server, "escape", url), HttpStatusCode.BadRequest);
            Assert.True(detail.Contains(Setting, StringComparison.Ordinal) || detail.Contains("'..'", StringComparison.Ordinal), $"{url}: {detail}");
        }
    }

    [Fact]
    public async Task A_project_made_before_its_root_was_removed_is_neither_synced_nor_read_as_an_inventory_source()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("hosts.yml", "all:\n  hosts:\n    h1:\n"), ("site.yml", "- hosts: all\n  gather_facts: false\n  tasks: [{debug: {msg: hi}}]\n"));
        using var data = new TempDir();
        var args = new[] { $"--DataDir={data.Path}" };
        await using (var before = await OpsgateServer.StartAsync(Provider.Sqlite, [.. args, repo.AllowArg]))
        {
            Assert.Equal(HttpStatusCode.Created, (await CreateProjectAsync(before, "cmdb", repo.Bare)).StatusCode);
            var made = await before.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "fleet", source = new { project = "cmdb", path = "hosts.yml" } }, OpsgateServer.Json);
            Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        }
        await using var after = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        var detail = await Problem.AssertAsync(await after.Admin.PostAsync("/api/v1/projects/cmdb/sync", null), HttpStatusCode.Conflict);
        Assert.Contains(Setting, detail, StringComparison.Ordinal);
        var source = await after.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "fleet2", source = new { project = "cmdb", path = "hosts.yml" } }, OpsgateServer.Json);
        detail = await Problem.AssertAsync(source, HttpStatusCode.BadRequest);
        Assert.Contains(Setting, detail, StringComparison.Ordinal);

        // A run of it fails at once, naming the setting: no retries of something only the settings can change.
        var run = await TestJobs.SubmitAsync(after.Admin, "ansible-playbook", new { project = "cmdb", playbook = "site.yml", inventory = "fleet" });
        var job = await TestJobs.WaitAsync(after.Admin, run, timeout: TimeSpan.FromSeconds(60));
        Assert.Equal("failed", job.Status());
        Assert.Equal(1, job.Step("playbook").GetProperty("attempts").GetInt32());
        Assert.Contains(Setting, job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_root_that_is_not_an_absolute_directory_stops_the_start_naming_the_key()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => OpsgateServer.StartAsync(Provider.Sqlite, [$"--{Setting}:0=relative/dir"]));
        Assert.Contains($"{Setting}:0", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAnyAsync<Exception>(() => OpsgateServer.StartAsync(Provider.Sqlite, ["--Ansible:KeepCheckouts=0"]));
        Assert.Contains("Ansible:KeepCheckouts", e.Message, StringComparison.Ordinal);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
