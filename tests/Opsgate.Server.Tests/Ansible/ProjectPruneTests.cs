using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>The project checkout cache keeps the newest Ansible:KeepCheckouts commits per project and every commit an unfinished job pins.</summary>
public sealed class ProjectPruneTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(120);

    private static string Site(string release) => $$"""
        - hosts: all
          gather_facts: false
          tasks:
            - debug: {msg: "release {{release}}"}
        """;

    /// <summary>Waits for a file, then includes a task file from the checkout: it fails if the checkout went away meanwhile.</summary>
    private const string Slow = """
        - hosts: all
          gather_facts: false
          tasks:
            - wait_for: {path: "{{ release_file }}", timeout: 150}
            - include_tasks: later.yml
        """;

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Old_checkouts_go_the_newest_and_those_of_unfinished_jobs_stay_and_a_pruned_commit_runs_again(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        using var runbooks = new TempDir();
        using var signal = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "held.yaml"), """
            name: held-commit-run
            parameters:
              - {name: project_commit, type: string, required: true}
              - {name: inventory, type: string, required: true}
            options: {requires_approval: true}
            steps:
              - name: playbook
                kind: ansible.run
                with: {project: main, project_commit: "{{ params.project_commit }}", playbook: site.yml, inventory: "{{ params.inventory }}"}
            """);
        var c1 = await repo.CommitAsync("one", ("site.yml", Site("one")), ("slow.yml", Slow), ("later.yml", "- debug: {msg: later}\n"));
        await using var server = await OpsgateServer.StartAsync(provider, [repo.AllowArg, "--Ansible:KeepCheckouts=2", $"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var checkouts = Path.Combine(server.DataDir, "projects", "checkouts");
        var created = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "main", git_repo = repo.Bare, @ref = "main" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));

        // A run of c1 that stays running (ansible waits for a file) until the end of the test.
        var release = Path.Combine(signal.Path, "go");
        var slow = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook",
            new { project = "main", playbook = "slow.yml", inventory, extra_vars = new { release_file = release } });
        await ReadEventsAsync(server.Admin, slow, until: e => e.Type == "project.pinned", timeout: RunLimit);
        await WaitForAsync(() => Directory.Exists(Path.Combine(checkouts, c1)));

        async Task<string> RunAtHeadAsync(string release, string? project = "main")
        {
            var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { project, playbook = "site.yml", inventory });
            var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
            Assert.True(job.Status() == "succeeded", job.ToString());
            Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("message") == "release " + release);
            return job.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString()!;
        }
        string[] OnDisk() => [.. Directory.GetDirectories(checkouts).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal)];
        static string[] Sorted(params string[] commits) => [.. commits.Order(StringComparer.Ordinal)];

        var c2 = await repo.CommitAsync("two", ("site.yml", Site("two")));
        Assert.Equal(c2, await RunAtHeadAsync("two"));
        // A job waiting for approval that will run c2 (a project_commit parameter): c2 stays while it waits.
        var held = await TestJobs.SubmitAsync(server.Admin, "held-commit-run", new { project_commit = c2, inventory });
        Assert.Equal("waiting_approval", (await TestJobs.GetAsync(server.Admin, held)).Status());
        var c3 = await repo.CommitAsync("three", ("site.yml", Site("three")));
        Assert.Equal(c3, await RunAtHeadAsync("three"));
        var c4 = await repo.CommitAsync("four", ("site.yml", Site("four")));
        Assert.Equal(c4, await RunAtHeadAsync("four"));
        // Newest two (c3, c4), the running job's c1 and the waiting job's c2.
        Assert.Equal(Sorted(c1, c2, c3, c4), OnDisk());

        // Once the waiting job is cancelled, the next new checkout prunes c2 and c3; c1 still runs.
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{held}/cancel", null)).StatusCode);
        var c5 = await repo.CommitAsync("five", ("site.yml", Site("five")));
        Assert.Equal(c5, await RunAtHeadAsync("five"));
        Assert.Equal(Sorted(c1, c4, c5), OnDisk());

        // The running playbook's checkout was never touched: its include, read only now, is there.
        await File.WriteAllTextAsync(release, "");
        var slowEvents = await ReadEventsAsync(server.Admin, slow, timeout: RunLimit);
        var slowJob = await TestJobs.WaitAsync(server.Admin, slow, timeout: RunLimit);
        Assert.True(slowJob.Status() == "succeeded", slowJob.ToString());
        Assert.Contains(slowEvents, e => e.Type == "ansible.runner_ok" && e.Str("message") == "later");
        Assert.Equal(c1, slowJob.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString());

        // Finished, c1 is pinned no more.
        var c6 = await repo.CommitAsync("six", ("site.yml", Site("six")));
        Assert.Equal(c6, await RunAtHeadAsync("six"));
        Assert.Equal(Sorted(c5, c6), OnDisk());

        // A pruned commit is checked out again when a run asks for it.
        created = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "at-two", git_repo = repo.Bare, @ref = c2[..12] }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(c2, await RunAtHeadAsync("two", "at-two"));
        Assert.True(File.Exists(Path.Combine(checkouts, c2, "site.yml")));
        // No half-made or set-aside checkout is left behind.
        Assert.Empty(Directory.GetDirectories(checkouts, ".*"));
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow + RunLimit;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "timed out");
            await Task.Delay(100);
        }
    }
}
