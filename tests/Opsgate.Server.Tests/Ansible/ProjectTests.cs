using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>Projects from real git repositories (bare repos made by the test, over a path, file:// and ssh), credentials, and runs that record their commit.</summary>
public sealed class ProjectTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(120);

    private static string Playbook(string release) => $$"""
        - hosts: all
          gather_facts: false
          tasks:
            - name: say
              debug: {msg: "release {{release}}"}
        """;

    private static async Task<JsonElement> CreateProjectAsync(OpsgateServer server, string name, string gitRepo, string? gitRef = null, string? credential = null)
    {
        var response = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name, git_repo = gitRepo, @ref = gitRef, credential }, OpsgateServer.Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create project {name}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static Task<HttpResponseMessage> TryCreateProjectAsync(OpsgateServer server, string name, string gitRepo, string? gitRef = null, string? credential = null) =>
        server.Admin.PostAsJsonAsync("/api/v1/projects", new { name, git_repo = gitRepo, @ref = gitRef, credential }, OpsgateServer.Json);

    private static async Task<(JsonElement Job, List<SseEvent> Events)> RunAsync(OpsgateServer server, object parameters)
    {
        var id = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", parameters);
        var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
        return (await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit), events);
    }

    /// <summary>The commit the run recorded, and the same on its project.pinned and ansible.summary events.</summary>
    private static string RecordedCommit(JsonElement job, List<SseEvent> events)
    {
        var commit = job.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString()!;
        Assert.Equal(commit, events.Single(e => e.Type == "project.pinned").Str("commit"));
        Assert.Equal(commit, events.Single(e => e.Type == "ansible.summary").Str("project_commit"));
        return commit;
    }

    private static bool Said(List<SseEvent> events, string message) => events.Any(e => e.Type == "ansible.runner_ok" && e.Str("message") == message);

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_project_runs_the_commit_its_tag_branch_or_commit_names_and_a_sync_moves_a_branch_on(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        var one = await repo.CommitAsync("one", ("site.yml", Playbook("one")));
        await repo.TagAsync("v1");
        var two = await repo.CommitAsync("two", ("site.yml", Playbook("two")), ("nested/other.yml", Playbook("nested two")));
        await repo.TagAsync("v2");
        await using var server = await OpsgateServer.StartAsync(provider, [repo.AllowArg]);
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));

        await CreateProjectAsync(server, "at-v1", repo.Bare, "v1");
        await CreateProjectAsync(server, "at-commit", "file://" + repo.Bare, one[..12]);
        var main = await CreateProjectAsync(server, "main", "file://" + repo.Bare, "main");
        Assert.Equal("main", main.GetProperty("ref").GetString());

        // A tag: v1's playbook, v1's commit recorded, although main has moved on to v2.
        var (job, events) = await RunAsync(server, new { project = "at-v1", playbook = "site.yml", inventory });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.True(Said(events, "release one"));
        Assert.Equal(one, RecordedCommit(job, events));

        // A branch, by the project's id, and a playbook in a subdirectory.
        (job, events) = await RunAsync(server, new { project = main.GetProperty("id").GetString(), playbook = "nested/other.yml", inventory });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.True(Said(events, "release nested two"));
        Assert.Equal(two, RecordedCommit(job, events));

        // An abbreviated commit id.
        (job, events) = await RunAsync(server, new { project = "at-commit", playbook = "site.yml", inventory });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal(one, RecordedCommit(job, events));

        // The branch moves; a sync says where to, and the next run uses it. The tag stays where it was.
        var three = await repo.CommitAsync("three", ("site.yml", Playbook("three")));
        var sync = await server.Admin.PostAsync("/api/v1/projects/main/sync", null);
        Assert.Equal(HttpStatusCode.OK, sync.StatusCode);
        Assert.Equal(three, (await sync.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("commit").GetString());
        Assert.Equal(three, (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/projects/main")).GetProperty("commit").GetString());
        (job, events) = await RunAsync(server, new { project = "main", playbook = "site.yml", inventory });
        Assert.True(Said(events, "release three"));
        Assert.Equal(three, RecordedCommit(job, events));
        var tagSync = await server.Admin.PostAsync("/api/v1/projects/at-v1/sync", null);
        Assert.Equal(one, (await tagSync.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("commit").GetString());

        var list = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/projects");
        Assert.Equal(["at-commit", "at-v1", "main"], list.GetProperty("items").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        // One checkout per commit, reused by every run of it.
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(server.DataDir, "projects", "checkouts")).Length);
    }

    [Fact]
    public async Task A_sharded_run_pins_the_commit_once_and_every_shard_runs_it_and_a_serial_playbook_in_a_project_is_refused()
    {
        using var repo = await GitRepo.CreateAsync();
        var one = await repo.CommitAsync("one", ("site.yml", Playbook("one")),
            ("rolling.yml", "- hosts: all\n  serial: 1\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n"));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3"]));
        await CreateProjectAsync(server, "main", "file://" + repo.Bare, "main");

        var (job, events) = await RunAsync(server, new { project = "main", playbook = "site.yml", inventory, shards = 3 });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal(one, job.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString());
        Assert.Equal(one, events.Single(e => e.Type == "project.pinned").Str("commit"));
        // The parent's own summary and the three relayed from its shards all name the pinned commit.
        Assert.Equal(4, events.Count(e => e.Type == "ansible.summary" && e.Str("project_commit") == one));
        var children = job.GetProperty("children").EnumerateArray().Select(c => c.GetProperty("job_id").GetString()!).ToList();
        Assert.Equal(3, children.Count);
        foreach (var child in children)
        {
            var shard = await TestJobs.WaitAsync(server.Admin, child, timeout: RunLimit);
            Assert.Equal(one, shard.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString());
        }
        Assert.Equal(3, events.Count(e => e.Type == "ansible.runner_ok" && e.Str("message") == "release one"));

        // A commit handed in by hand (not a shard of a parent that pinned it) is refused: the project's ref decides.
        var byHand = await TestJobs.SubmitAsync(server.Admin, "ansible-shard",
            new { project = "main", project_commit = one, playbook = "site.yml", inventory = Inventory(["h1"]) });
        var refused = await TestJobs.WaitAsync(server.Admin, byHand, timeout: RunLimit);
        Assert.Equal("failed", refused.Status());
        Assert.Contains("only for the shards of a sharded run", refused.GetProperty("error").GetString(), StringComparison.Ordinal);

        // serial: read from the pinned checkout when the parent starts, so the job fails saying why.
        (job, _) = await RunAsync(server, new { project = "main", playbook = "rolling.yml", inventory, shards = 2 });
        Assert.Equal("failed", job.Status());
        Assert.Contains("cannot be sharded", job.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_retried_job_runs_the_commit_its_first_attempt_pinned_not_where_the_branch_is_now()
    {
        using var repo = await GitRepo.CreateAsync();
        using var gateDir = new TempDir();
        var gate = Path.Combine(gateDir.Path, "open");
        var one = await repo.CommitAsync("one", ("site.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - stat: {path: "{{ gate }}"}
                  register: g
                - fail: {msg: "the gate is closed"}
                  when: not g.stat.exists
                - debug: {msg: "release one"}
            """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        await CreateProjectAsync(server, "gated", repo.Bare, "main");

        var (job, _) = await RunAsync(server, new { project = "gated", playbook = "site.yml", inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"])), extra_vars = new { gate } });
        Assert.Equal("failed", job.Status());
        Assert.Contains("the gate is closed", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);

        await repo.CommitAsync("two", ("site.yml", Playbook("two")));
        await File.WriteAllTextAsync(gate, "");
        var id = job.GetProperty("job_id").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/retry", null)).StatusCode);
        var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
        job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.True(Said(events, "release one"));
        Assert.False(Said(events, "release two"));
        Assert.Equal(one, job.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString());
        Assert.Equal([one, one], events.Where(e => e.Type == "ansible.summary").Select(e => e.Str("project_commit")));
    }

    [Fact]
    public async Task Bad_repositories_refs_urls_and_playbook_paths_are_refused_with_a_reason()
    {
        using var repo = await GitRepo.CreateAsync();
        var commit = await repo.CommitAsync("one", ("site.yml", Playbook("one")));
        await repo.TagAsync("v1");
        using var outside = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(outside.Path, "evil.yml"), Playbook("evil"));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);

        // git's own message for a repository or a ref that is not there.
        var detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", Path.Combine(Path.GetDirectoryName(repo.Bare)!, "missing.git")), HttpStatusCode.BadRequest);
        Assert.Contains("git_repo", detail, StringComparison.Ordinal);
        Assert.Contains("does not appear to be a git repository", detail, StringComparison.Ordinal);
        detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", repo.Bare, "no-such-branch"), HttpStatusCode.BadRequest);
        Assert.Contains("ref: 'no-such-branch' is not a branch or tag", detail, StringComparison.Ordinal);
        detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", repo.Bare, "0123456789abcdef0123456789abcdef01234567"), HttpStatusCode.BadRequest);
        Assert.Contains("ref: '0123456789abcdef0123456789abcdef01234567' is not a branch, tag or commit", detail, StringComparison.Ordinal);

        // Option and command injection never reach git.
        foreach (var url in new[] { "-uhelp", "--upload-pack=touch /tmp/x", "ext::sh -c touch% /tmp/x", "ext::sh", "ssh://-oProxyCommand=touch/tmp/x/repo",
                     "git@-oProxyCommand=x:repo", "http://example.com/repo.git", "relative/repo.git", "https://user:pw@example.com/repo.git", "file://relative" })
        {
            detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", url), HttpStatusCode.BadRequest);
            Assert.StartsWith("git_repo:", detail, StringComparison.Ordinal);
        }
        foreach (var gitRef in new[] { "--upload-pack=touch", "-v1", "a..b", "/abs", "has space" })
        {
            detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", repo.Bare, gitRef), HttpStatusCode.BadRequest);
            Assert.StartsWith("ref:", detail, StringComparison.Ordinal);
        }
        await Problem.AssertAsync(await TryCreateProjectAsync(server, "Bad_Name", repo.Bare), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", repo.Bare, credential: "nope"), HttpStatusCode.BadRequest);
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/projects")).GetProperty("items").EnumerateArray());

        await CreateProjectAsync(server, "p", repo.Bare, "v1");
        await Problem.AssertAsync(await TryCreateProjectAsync(server, "p", repo.Bare, "v1"), HttpStatusCode.Conflict);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/projects/nope"), HttpStatusCode.NotFound);

        // An unknown project or credential is a 400 at submit, naming the input.
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var response = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { project = "nope", playbook = "site.yml", inventory } }, OpsgateServer.Json);
        Assert.Contains("steps.playbook.project: project 'nope' does not exist", await Problem.AssertAsync(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        response = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { project = "p", playbook = "site.yml", inventory, credential = "nope" } }, OpsgateServer.Json);
        Assert.Contains("steps.playbook.credential: credential 'nope' does not exist", await Problem.AssertAsync(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);

        // A playbook path that leaves the checkout, or is not in it at the commit the ref names, is a 400 at submit; no job.
        foreach (var (path, why) in new[]
                 {
                     ($"../../../../../../..{outside.Path}/evil.yml", "is outside project 'p'"),
                     ($"{outside.Path}/evil.yml", "is outside project 'p'"),
                     ("missing.yml", $"does not exist in project 'p' at commit {commit} (its ref v1)"),
                 })
        {
            response = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { project = "p", playbook = path, inventory } }, OpsgateServer.Json);
            Assert.Equal($"steps.playbook.playbook: playbook '{path}' {why}", await Problem.AssertAsync(response, HttpStatusCode.BadRequest));
        }
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs")).GetProperty("items").EnumerateArray());

        // The playbook that is there runs.
        var (job, events) = await RunAsync(server, new { project = "p", playbook = "site.yml", inventory });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Contains(events, e => e.Type == "ansible.playbook_start");
    }

    [Fact]
    public async Task A_playbook_added_to_the_branch_after_the_last_sync_is_found_at_submit()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", Playbook("one")));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        await CreateProjectAsync(server, "p", "file://" + repo.Bare, "main");
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var response = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { project = "p", playbook = "new.yml", inventory } }, OpsgateServer.Json);
        Assert.Contains("playbook 'new.yml' does not exist in project 'p' at commit", await Problem.AssertAsync(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);

        // The ref moved on with the playbook: the submit fetches it, and the run pins and runs that commit.
        await repo.CommitAsync("two", ("new.yml", Playbook("two")));
        var (job, events) = await RunAsync(server, new { project = "p", playbook = "new.yml", inventory });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.True(Said(events, "release two"));
    }

    [Fact]
    public async Task Credentials_reach_git_over_ssh_and_the_machines_of_a_run_and_their_secrets_appear_nowhere()
    {
        await using var ssh = await SshTarget.StartAsync();
        using var repo = await GitRepo.CreateAsync();
        var commit = await repo.CommitAsync("one", ("site.yml", """
            - hosts: all
              gather_facts: false
              tasks:
                - command: id -un
                  register: who
                - debug: {msg: "{{ inventory_hostname }} is {{ who.stdout }}"}
            """));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var key = await File.ReadAllTextAsync(ssh.ClientKey);
        var keyBody = key.Split('\n')[1]; // a line of the key's base64: in no response, audit entry or event
        const string Token = "tok-Zq9-very-secret-value";

        async Task<HttpResponseMessage> Credential(object body) => await server.Admin.PostAsJsonAsync("/api/v1/credentials", body, OpsgateServer.Json);
        var created = await Credential(new { name = "deploy", kind = "ssh_key", secret = key, username = "root" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var createdBody = await created.Content.ReadAsStringAsync();
        Assert.DoesNotContain(keyBody, createdBody, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await Credential(new { name = "forge", kind = "token", secret = Token })).StatusCode);
        await Problem.AssertAsync(await Credential(new { name = "x", kind = "kerberos", secret = "s" }), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await Credential(new { name = "x", kind = "ssh_key", secret = "not a key" }), HttpStatusCode.BadRequest);
        await Problem.AssertAsync(await Credential(new { name = "deploy", kind = "token", secret = "s" }), HttpStatusCode.Conflict);
        using var viewer = server.Client((await server.CreateKeyAsync("looker", "viewer")).Key);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/v1/credentials")).StatusCode);
        using var operatorClient = server.Client((await server.CreateKeyAsync("runner", "operator")).Key);
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.GetAsync("/api/v1/credentials")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await operatorClient.PostAsJsonAsync("/api/v1/credentials", new { name = "mine", kind = "token", secret = "s" }, OpsgateServer.Json)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await operatorClient.DeleteAsync("/api/v1/credentials/forge")).StatusCode);
        // git would send the credential to whatever host the project names: only an admin may point one at a host.
        var pointed = await operatorClient.PostAsJsonAsync("/api/v1/projects",
            new { name = "exfil", git_repo = "https://attacker.invalid/x.git", credential = "forge" }, OpsgateServer.Json);
        Assert.Contains("requires role admin", await Problem.AssertAsync(pointed, HttpStatusCode.Forbidden), StringComparison.Ordinal);
        // A password in the URL is refused, for ssh as for https, and never reaches the audit log.
        var withPassword = await server.Admin.PostAsJsonAsync("/api/v1/projects",
            new { name = "pw", git_repo = "ssh://git:hunter2-in-url@127.0.0.1/x.git" }, OpsgateServer.Json);
        await Problem.AssertAsync(withPassword, HttpStatusCode.BadRequest);

        // git over ssh needs the key: without it the server says no, with it the project is made.
        var url = $"ssh://root@127.0.0.1:{ssh.Port}{repo.Bare}";
        var detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "over-ssh", url, "main"), HttpStatusCode.BadRequest);
        Assert.Contains("Permission denied", detail, StringComparison.Ordinal);
        detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "over-ssh", url, "main", "forge"), HttpStatusCode.BadRequest);
        Assert.Contains("does not fit", detail, StringComparison.Ordinal);
        await CreateProjectAsync(server, "over-ssh", url, "main", "deploy");
        // user@host:path is accepted and goes to ssh (port 22, where nothing of ours listens): git's answer, not a refusal of the form.
        detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "scp-like", $"root@127.0.0.1:{repo.Bare}", "main", "deploy"), HttpStatusCode.BadRequest);
        Assert.Contains("Could not read from remote repository", detail, StringComparison.Ordinal);

        // The machines: the run's key comes from the credential (in the run's ssh-agent, --user root); the inventory names neither.
        var inventory = $"all:\n  hosts:\n    s1: {{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {ssh.Port}, ansible_python_interpreter: /usr/bin/python3, " +
                        "ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'}\n";
        inventory = await StoreInventoryAsync(server.Admin, inventory);
        var (job, events) = await RunAsync(server, new { project = "over-ssh", playbook = "site.yml", inventory, credential = "deploy" });
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.True(Said(events, "s1 is root"));
        Assert.Equal(commit, RecordedCommit(job, events));
        // Without the credential the same run cannot get in.
        (job, _) = await RunAsync(server, new { project = "over-ssh", playbook = "site.yml", inventory });
        Assert.Equal("failed", job.Status());
        Assert.Contains("unreachable", job.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);
        // A token is not a machine credential.
        var refused = await server.Admin.PostAsJsonAsync("/api/v1/jobs", new { type = "ansible-playbook", @params = new { project = "over-ssh", playbook = "site.yml", inventory, credential = "forge" } }, OpsgateServer.Json);
        Assert.Contains("ssh_key", await Problem.AssertAsync(refused, HttpStatusCode.BadRequest), StringComparison.Ordinal);

        // The list shows names and kinds, never secrets; nor do audit entries or events; nor any file in the data dir.
        var list = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/credentials");
        Assert.Equal(["deploy:ssh_key:root", "forge:token:"], list.GetProperty("items").EnumerateArray()
            .Select(c => $"{c.GetProperty("name").GetString()}:{c.GetProperty("kind").GetString()}:{(c.TryGetProperty("username", out var u) ? u.GetString() : null)}"));
        var audit = await server.Admin.GetStringAsync("/api/v1/audit?limit=200");
        Assert.Contains("credential.create", audit, StringComparison.Ordinal);
        Assert.Contains("[REDACTED]", audit, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2-in-url", audit, StringComparison.Ordinal);
        var allEvents = string.Join('\n', events.Select(e => e.Data.GetRawText()));
        foreach (var text in new[] { list.GetRawText(), audit, allEvents })
        {
            Assert.DoesNotContain(keyBody, text, StringComparison.Ordinal);
            Assert.DoesNotContain(Token, text, StringComparison.Ordinal);
        }
        // Nor any file the runs and git calls left: the data dir, and the private temp dirs (deleted after each run and call).
        var leftovers = Directory.EnumerateDirectories(Path.GetTempPath())
            .Where(d => Path.GetFileName(d).StartsWith("opsgate-ansible-", StringComparison.Ordinal) || Path.GetFileName(d).StartsWith("opsgate-git-", StringComparison.Ordinal))
            .SelectMany(d =>
            {
                try
                {
                    return Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).ToList();
                }
                catch (IOException)
                {
                    return []; // another test's run ended meanwhile
                }
            });
        foreach (var file in Directory.EnumerateFiles(server.DataDir, "*", SearchOption.AllDirectories).Concat(leftovers))
        {
            string content;
            try
            {
                content = await File.ReadAllTextAsync(file);
            }
            catch (IOException)
            {
                continue; // gone meanwhile, or a socket
            }
            Assert.False(content.Contains(keyBody, StringComparison.Ordinal) || content.Contains(Token, StringComparison.Ordinal), $"a secret is in {file}");
        }

        // A credential in use cannot go; once its projects are gone it can.
        await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/credentials/deploy"), HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/projects/over-ssh")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/credentials/deploy")).StatusCode);
        await Problem.AssertAsync(await server.Admin.GetAsync("/api/v1/projects/over-ssh"), HttpStatusCode.NotFound);
        Assert.False(Directory.EnumerateDirectories(Path.Combine(server.DataDir, "projects"), "*.git").Any());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_project_or_credential_that_an_unfinished_job_names_is_not_deleted_under_it(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", Playbook("one")));
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "approved.yaml"), """
            name: approved-project-run
            parameters:
              - {name: project, type: string, required: true}
              - {name: credential, type: string, required: true}
              - {name: inventory, type: string, required: true}
            options: {requires_approval: true}
            steps:
              - name: playbook
                kind: ansible.run
                with: {project: "{{ params.project }}", playbook: site.yml, credential: "{{ params.credential }}", inventory: "{{ params.inventory }}"}
            """);
        await using var server = await OpsgateServer.StartAsync(provider, [$"--Jobs:RunbookDirectory={runbooks.Path}", repo.AllowArg]);
        using var keys = new TempDir();
        var created = await server.Admin.PostAsJsonAsync("/api/v1/credentials", new { name = "held", kind = "ssh_key", secret = await SshTarget.NewKeyAsync(keys) }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var project = (await CreateProjectAsync(server, "held-site", repo.Bare, "main")).GetProperty("id").GetString()!;
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));

        // A job waiting for approval names both, the project by its id: neither can go while it waits.
        var waiting = await TestJobs.SubmitAsync(server.Admin, "approved-project-run", new { project, credential = "held", inventory });
        var projectRefused = await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/projects/held-site"), HttpStatusCode.Conflict);
        Assert.Equal($"project 'held-site' is used by job {waiting}, which has not finished; delete it after the job ends (or cancel the job)", projectRefused);
        var credentialRefused = await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/credentials/held"), HttpStatusCode.Conflict);
        Assert.Equal($"credential 'held' is used by job {waiting}, which has not finished; delete it after the job ends (or cancel the job)", credentialRefused);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/api/v1/projects/held-site")).StatusCode);
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=project.delete");
        Assert.Equal(409, audit.GetProperty("items")[0].GetProperty("http_status").GetInt32());

        // Named by its name, the same; once no unfinished job names them, both can go.
        var byName = await TestJobs.SubmitAsync(server.Admin, "approved-project-run", new { project = "held-site", credential = "held", inventory });
        foreach (var job in new[] { waiting, byName })
        {
            Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{job}/cancel", null)).StatusCode);
            await TestJobs.WaitAsync(server.Admin, job);
            if (job == waiting)
                Assert.Contains($"used by job {byName}", await Problem.AssertAsync(await server.Admin.DeleteAsync("/api/v1/projects/held-site"), HttpStatusCode.Conflict), StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/projects/held-site")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/credentials/held")).StatusCode);
    }

    [Fact]
    public async Task Concurrent_runs_and_syncs_of_one_project_share_one_intact_checkout()
    {
        using var repo = await GitRepo.CreateAsync();
        var commit = await repo.CommitAsync("one", ("site.yml", Playbook("one")), ("roles/r/tasks/main.yml", "- debug: {msg: role}\n"));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        await CreateProjectAsync(server, "shared", repo.Bare, "main");

        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1"]));
        var submits = Enumerable.Range(0, 4).Select(_ => TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { project = "shared", playbook = "site.yml", inventory })).ToList();
        var syncs = Enumerable.Range(0, 3).Select(_ => server.Admin.PostAsync("/api/v1/projects/shared/sync", null)).ToList();
        foreach (var sync in await Task.WhenAll(syncs))
            Assert.Equal(commit, (await sync.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("commit").GetString());
        foreach (var id in await Task.WhenAll(submits))
        {
            var job = await TestJobs.WaitAsync(server.Admin, id, timeout: RunLimit);
            Assert.True(job.Status() == "succeeded", job.ToString());
            Assert.Equal(commit, job.Step("playbook").GetProperty("output").GetProperty("project_commit").GetString());
        }
        var checkouts = Path.Combine(server.DataDir, "projects", "checkouts");
        Assert.Equal([commit], Directory.GetDirectories(checkouts).Select(Path.GetFileName));
        Assert.True(File.Exists(Path.Combine(checkouts, commit, "roles", "r", "tasks", "main.yml")));
    }

    /// <summary>
    /// No https git server runs here, so a stand-in for the git binary (Ansible:GitCommand) shows what Opsgate hands
    /// git for a token: it records its arguments and environment, and answers with an error that echoes the header.
    /// </summary>
    [Fact]
    public async Task A_token_reaches_git_only_through_its_environment_and_is_scrubbed_from_gits_message()
    {
        using var dir = new TempDir();
        var log = Path.Combine(dir.Path, "git.log");
        var script = Path.Combine(dir.Path, "fake-git");
        await File.WriteAllTextAsync(script, $$"""
            #!/bin/sh
            { printf 'argv:'; for a in "$@"; do printf ' [%s]'  "$a"; done; printf '\n'; env; printf -- '----\n'; } >> '{{log}}'
            echo "fatal: unable to access 'https://git.example.com/': server rejected $GIT_CONFIG_VALUE_0" >&2
            exit 128
            """);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Ansible:GitCommand={script}"]);
        const string Token = "glpat-Secret-Token-4711";
        foreach (var (name, username) in new[] { ("bearer", (string?)null), ("basic", "ci-bot") })
        {
            var created = await server.Admin.PostAsJsonAsync("/api/v1/credentials", new { name, kind = "token", secret = Token, username }, OpsgateServer.Json);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        var basic = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("ci-bot:" + Token));

        foreach (var (credential, header) in new[] { ("bearer", "Authorization: Bearer " + Token), ("basic", "Authorization: Basic " + basic) })
        {
            File.Delete(log);
            var detail = await Problem.AssertAsync(await TryCreateProjectAsync(server, "remote", "https://git.example.com/team/repo.git", "main", credential), HttpStatusCode.BadRequest);
            Assert.Contains("server rejected Authorization: [REDACTED]", detail, StringComparison.Ordinal);
            Assert.DoesNotContain(Token, detail, StringComparison.Ordinal);
            Assert.DoesNotContain(basic, detail, StringComparison.Ordinal);

            var lines = (await File.ReadAllTextAsync(log)).Split('\n');
            Assert.Equal("argv: [ls-remote] [--] [https://git.example.com/team/repo.git]", lines[0]);
            var env = lines.Skip(1).TakeWhile(l => l != "----").Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            Assert.Equal("http.extraHeader", env["GIT_CONFIG_KEY_0"]);
            Assert.Equal(header, env["GIT_CONFIG_VALUE_0"]);
            Assert.Equal("1", env["GIT_CONFIG_COUNT"]);
            Assert.Equal("1", env["GIT_CONFIG_NOSYSTEM"]);
            Assert.Equal("/dev/null", env["GIT_CONFIG_GLOBAL"]);
            Assert.Equal("0", env["GIT_TERMINAL_PROMPT"]);
            Assert.Equal("file:ssh:https", env["GIT_ALLOW_PROTOCOL"]);
            Assert.StartsWith(Path.GetTempPath(), env["HOME"] + "/", StringComparison.Ordinal);
            Assert.False(Directory.Exists(env["HOME"]), "git's private directory outlived the call");
            // Nothing of the server's own environment gets through (sh itself adds PWD, SHLVL and _).
            Assert.All(env.Keys, k => Assert.True(k.StartsWith("GIT_", StringComparison.Ordinal) || k is "PATH" or "HOME" or "LANG" or "LC_ALL" or "PWD" or "SHLVL" or "_", $"{k} reached git"));
        }
        Assert.DoesNotContain(Token, await server.Admin.GetStringAsync("/api/v1/audit?limit=100"), StringComparison.Ordinal);
        Assert.DoesNotContain(Token, await server.Admin.GetStringAsync("/api/v1/credentials"), StringComparison.Ordinal);
    }
}
