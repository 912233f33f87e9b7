using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>
/// POST /api/v1/jobs/{id}/retry with {"hosts": "failed"}: a new job over the original's failed and unreachable hosts,
/// on the inventory version and project commit the original ran, linked both ways; refusals; a sharded original.
/// </summary>
public sealed class RetryFailedHostsTests
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(120);

    // A host fails when its inventory says broken; every host is reached first (ping connects, debug and assert do
    // not), checks a secret extra var arrived, then says which inventory version and which commit of the playbook it ran.
    private static string Playbook(string release) => $$$"""
        - hosts: all
          gather_facts: false
          tasks:
            - name: reach
              ping:
            - name: secret arrived
              assert: {that: ["db_password == 'retry-s3cret-value'"]}
            - name: say
              debug: {msg: "release {{{release}}} inventory {{ inv }}"}
            - name: break
              fail: {msg: "broken {{ inventory_hostname }}"}
              when: broken | default(false) | bool
        """;

    /// <summary>Five local hosts, h2 and h4 broken, and "gone": ssh to a port nothing listens on (unreachable at once).</summary>
    private static string Hosts(string inv, bool broken = true)
    {
        var text = new StringBuilder($"all:\n  vars: {{{LocalVars}, inv: {inv}}}\n  hosts:\n");
        foreach (var name in new[] { "h1", "h2", "h3", "h4", "h5" })
            text.Append($"    {name}: {{broken: {(broken && name is "h2" or "h4" ? "true" : "false")}}}\n");
        text.Append($"    gone: {{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {ClosedPort()}, ansible_user: nobody}}\n");
        return text.ToString();
    }

    private static Task<HttpResponseMessage> RetryAsync(HttpClient client, string id, object? body) => body is null
        ? client.PostAsync($"/api/v1/jobs/{id}/retry", null)
        : client.PostAsJsonAsync($"/api/v1/jobs/{id}/retry", body, OpsgateServer.Json);

    private static async Task<JsonElement> RetryFailedAsync(HttpClient client, string id)
    {
        var response = await RetryAsync(client, id, new { hosts = "failed" });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"retry {id} on failed hosts: {(int)response.StatusCode} {body}");
        var job = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal($"/api/v1/jobs/{job.GetProperty("job_id").GetString()}", response.Headers.Location?.OriginalString);
        return job;
    }

    /// <summary>The job.retry audit entry that started <paramref name="newJob"/> (entries are written just after the response).</summary>
    private static async Task<JsonElement> RetryAuditAsync(HttpClient client, string newJob)
    {
        for (var tries = 0; ; tries++)
        {
            var audit = await client.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=job.retry");
            var found = audit.GetProperty("items").EnumerateArray().Where(e => e.GetProperty("job_id").GetString() == newJob).ToList();
            if (found.Count > 0 || tries == 100)
                return Assert.Single(found);
            await Task.Delay(50);
        }
    }

    private static async Task<JsonElement> HostsOfAsync(HttpClient client, string id) =>
        await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");

    private static List<string> Names(JsonElement hosts) => hosts.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_retry_runs_only_the_failed_hosts_on_the_inventory_version_and_commit_the_original_ran(Provider provider)
    {
        using var repo = await GitRepo.CreateAsync();
        var one = await repo.CommitAsync("one", ("site.yml", Playbook("one")));
        using var playbooks = new TempDir();
        await using var server = await StartAsync(provider, playbooks, [repo.AllowArg]);
        var created = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "site", git_repo = "file://" + repo.Bare, @ref = "main" }, OpsgateServer.Json);
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var inventory = await StoreInventoryAsync(server.Admin, Hosts("first"), "fleet");

        var original = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new
        {
            playbook = "site.yml", project = "site", inventory, forks = 6, extra_vars = new { db_password = "retry-s3cret-value" },
        });
        var done = await TestJobs.WaitAsync(server.Admin, original, timeout: RunLimit);
        Assert.Equal("failed", done.Status());
        var originalHosts = await HostsOfAsync(server.Admin, original);
        Assert.Equal(6, originalHosts.EnumerateObject().Count());
        Assert.Equal(1, originalHosts.GetProperty("gone").GetProperty("stats").GetProperty("unreachable").GetInt32());

        // Meanwhile the branch moves on and the inventory gets a version in which nothing is broken.
        var two = await repo.CommitAsync("two", ("site.yml", Playbook("two")));
        Assert.NotEqual(one, two);
        await StoreInventoryAsync(server.Admin, Hosts("second", broken: false), "fleet");

        var retry = await RetryFailedAsync(server.Admin, original);
        var retryId = retry.GetProperty("job_id").GetString()!;
        Assert.Equal(original, retry.GetProperty("retry_of").GetString());
        var parameters = retry.GetProperty("params");
        Assert.Equal("gone,h2,h4", parameters.GetProperty("limit").GetString());
        Assert.Equal("1", parameters.GetProperty("inventory_version").GetString());
        Assert.Equal(one, parameters.GetProperty("project_commit").GetString());
        Assert.Equal("[REDACTED]", parameters.GetProperty("extra_vars").GetProperty("db_password").GetString());
        Assert.DoesNotContain("retry-s3cret-value", retry.GetRawText(), StringComparison.Ordinal);

        var events = await ReadEventsAsync(server.Admin, retryId, timeout: RunLimit);
        var retried = await TestJobs.WaitAsync(server.Admin, retryId, timeout: RunLimit);
        Assert.Equal("failed", retried.Status()); // the old version still breaks h2 and h4, and gone is still gone

        // Only the failed and unreachable hosts ran, on the first inventory version and the first commit, and the
        // secret extra var arrived (h2 and h4 fail at "break", after the assert).
        var retryHosts = await HostsOfAsync(server.Admin, retryId);
        Assert.Equal(["gone", "h2", "h4"], Names(retryHosts));
        foreach (var host in new[] { "h2", "h4" })
        {
            Assert.Contains($"broken {host}", retryHosts.GetProperty(host).GetProperty("failures").GetRawText(), StringComparison.Ordinal);
            Assert.Contains(events, e => e.Type == "ansible.runner_ok" && e.Str("host") == host && e.Str("message") == "release one inventory first");
        }
        Assert.Equal(1, retryHosts.GetProperty("gone").GetProperty("stats").GetProperty("unreachable").GetInt32());
        Assert.DoesNotContain(events, e => e.Type.StartsWith("ansible.runner", StringComparison.Ordinal) && e.Str("host") is "h1" or "h3" or "h5");
        Assert.Equal(one, events.Single(e => e.Type == "project.pinned").Str("commit"));
        Assert.Equal(one, events.Last(e => e.Type == "ansible.summary").Str("project_commit"));
        Assert.Equal("1", events.Last(e => e.Type == "ansible.summary").Body.GetProperty("inventory").GetProperty("version").GetString());

        // The original lists its retry; the retry, its original.
        var originalNow = await TestJobs.GetAsync(server.Admin, original);
        Assert.Equal([retryId], originalNow.GetProperty("retries").EnumerateArray().Select(r => r.GetProperty("job_id").GetString()));
        Assert.Equal("failed", originalNow.GetProperty("retries")[0].GetProperty("status").GetString());
        Assert.Equal(original, (await TestJobs.GetAsync(server.Admin, retryId)).GetProperty("retry_of").GetString());

        // A retry of the retry narrows to what failed in it, still on the original's version and commit.
        var again = await RetryFailedAsync(server.Admin, retryId);
        Assert.Equal("gone,h2,h4", again.GetProperty("params").GetProperty("limit").GetString());
        Assert.Equal(one, again.GetProperty("params").GetProperty("project_commit").GetString());
        var againDone = await TestJobs.WaitAsync(server.Admin, again.GetProperty("job_id").GetString()!, timeout: RunLimit);
        Assert.Equal(["gone", "h2", "h4"], Names(await HostsOfAsync(server.Admin, again.GetProperty("job_id").GetString()!)));
        Assert.Equal("failed", againDone.Status());

        // The commit parameter is for retries only: a job given one by hand fails saying so, before ansible runs.
        var byHand = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", project = "site", project_commit = one, inventory });
        var refused = await TestJobs.WaitAsync(server.Admin, byHand, timeout: RunLimit);
        Assert.Equal("failed", refused.Status());
        Assert.Contains("project_commit is only for the shards of a sharded run and retries on failed hosts", refused.GetProperty("error").GetString(), StringComparison.Ordinal);

        // The audit log has the retry, about the original, with the new job's id.
        var entry = await RetryAuditAsync(server.Admin, retryId);
        Assert.Equal(original, entry.GetProperty("resource_name").GetString());
        Assert.Equal("success", entry.GetProperty("status").GetString());

        // Without hosts, /retry still re-runs the failed job in place.
        var inPlace = await RetryAsync(server.Admin, original, null);
        Assert.Equal(HttpStatusCode.OK, inPlace.StatusCode);
        Assert.Equal("pending", (await inPlace.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, original, timeout: RunLimit)).Status());
    }

    [Fact]
    public async Task A_bad_body_a_running_job_a_job_without_failed_hosts_and_a_viewer_are_refused()
    {
        using var playbooks = new TempDir();
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "fixed.yaml"), """
            name: ansible-fixed
            parameters:
              - {name: inventory, type: string, required: true}
            steps:
              - name: playbook
                kind: ansible.run
                with: {playbook: fail.yml, inventory: "{{ params.inventory }}"}
            """);
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [$"--Jobs:RunbookDirectory={runbooks.Path}"],
            ("fail.yml", "- hosts: all\n  gather_facts: false\n  tasks: [{fail: {msg: no}, when: \"inventory_hostname == 'h2'\"}]\n"),
            ("ok.yml", "- hosts: all\n  gather_facts: false\n  tasks: [{debug: {msg: fine}}]\n"),
            ("slow.yml", "- hosts: all\n  gather_facts: false\n  tasks: [{command: sleep 60}]\n"));
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2"]));

        var failed = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "fail.yml", inventory });
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, failed, timeout: RunLimit)).Status());

        // Anything but "failed" names the field; so do a wrong type and an unknown member.
        Assert.Contains("hosts: must be \"failed\"", await Problem.AssertAsync(await RetryAsync(server.Admin, failed, new { hosts = "all" }), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("hosts", await Problem.AssertAsync(await RetryAsync(server.Admin, failed, new { hosts = 5 }), HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("host", await Problem.AssertAsync(await RetryAsync(server.Admin, failed, new { host = "failed" }), HttpStatusCode.BadRequest), StringComparison.Ordinal);

        // A viewer may not retry; an operator may.
        var (_, viewerKey) = await server.CreateKeyAsync("viewer", "viewer");
        await Problem.AssertAsync(await RetryAsync(server.Client(viewerKey), failed, new { hosts = "failed" }), HttpStatusCode.Forbidden);
        var (_, operatorKey) = await server.CreateKeyAsync("operator", "operator");
        var retry = await RetryFailedAsync(server.Client(operatorKey), failed);
        Assert.Equal("h2", retry.GetProperty("params").GetProperty("limit").GetString());
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, retry.GetProperty("job_id").GetString()!, timeout: RunLimit)).Status());

        // A job that succeeded has no failed hosts.
        var fine = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "ok.yml", inventory });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, fine, timeout: RunLimit)).Status());
        Assert.Contains($"job {fine} has no failed or unreachable hosts",
            await Problem.AssertAsync(await RetryAsync(server.Admin, fine, new { hosts = "failed" }), HttpStatusCode.Conflict), StringComparison.Ordinal);

        // A runbook whose ansible.run step has a fixed limit (none) cannot be narrowed to the failed hosts.
        var fixedRun = await TestJobs.SubmitAsync(server.Admin, "ansible-fixed", new { inventory });
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, fixedRun, timeout: RunLimit)).Status());
        Assert.Contains("does not take limit from a parameter",
            await Problem.AssertAsync(await RetryAsync(server.Admin, fixedRun, new { hosts = "failed" }), HttpStatusCode.BadRequest), StringComparison.Ordinal);

        // A running job cannot be retried on its failed hosts (nor in place).
        var slow = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "slow.yml", inventory });
        await TestJobs.WaitAsync(server.Admin, slow, j => j.Status() == "running", RunLimit);
        Assert.Contains($"job {slow} is running",
            await Problem.AssertAsync(await RetryAsync(server.Admin, slow, new { hosts = "failed" }), HttpStatusCode.Conflict), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{slow}/cancel", null)).StatusCode);
        await TestJobs.WaitAsync(server.Admin, slow, timeout: RunLimit);
        // Only the operator's retry made a job; every refusal made none.
        Assert.Single((await TestJobs.GetAsync(server.Admin, failed)).GetProperty("retries").EnumerateArray());
    }

    [Fact]
    public async Task A_retry_passes_the_checks_of_a_submit_credential_use_and_approval()
    {
        using var playbooks = new TempDir();
        using var runbooks = new TempDir();
        using var keys = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "gated.yaml"), """
            name: ansible-gated
            options: {requires_approval: true}
            parameters:
              - {name: inventory, type: string, required: true}
              - {name: inventory_version, type: string}
              - {name: limit, type: string}
            steps:
              - name: playbook
                kind: ansible.run
                with: {playbook: fail.yml, inventory: "{{ params.inventory }}", inventory_version: "{{ params.inventory_version }}", limit: "{{ params.limit }}"}
            """);
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [$"--Jobs:RunbookDirectory={runbooks.Path}"],
            ("fail.yml", "- hosts: all\n  gather_facts: false\n  tasks: [{fail: {msg: no}, when: \"inventory_hostname == 'h2'\"}]\n"));
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3"]));
        var operatorClient = server.Client((await server.CreateKeyAsync("operator", "operator")).Key);
        var approver = server.Client((await server.CreateKeyAsync("approver", "approver")).Key);

        // The original used a credential only admins may use (the local connection ignores its key): an operator
        // may retry the job but not start one with that credential.
        var created = await server.Admin.PostAsJsonAsync("/api/v1/credentials",
            new { name = "admin-key", kind = "ssh_key", secret = await SshTarget.NewKeyAsync(keys), use = new { min_role = "admin" } }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var original = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "fail.yml", inventory, credential = "admin-key" });
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, original, timeout: RunLimit)).Status());
        Assert.Contains("admin-key", await Problem.AssertAsync(await RetryAsync(operatorClient, original, new { hosts = "failed" }), HttpStatusCode.Forbidden), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, (await TestJobs.GetAsync(server.Admin, original)).GetProperty("retries").ValueKind); // the refusal made no job
        var byAdmin = await RetryFailedAsync(server.Admin, original);
        Assert.Equal("admin-key", byAdmin.GetProperty("params").GetProperty("credential").GetString());
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, byAdmin.GetProperty("job_id").GetString()!, timeout: RunLimit)).Status());

        // A runbook that needs approval: its retry waits for approval too, and runs only the failed host once approved.
        var gated = await TestJobs.SubmitAsync(server.Admin, "ansible-gated", new { inventory });
        Assert.Equal(HttpStatusCode.OK, (await approver.PostAsync($"/api/v1/jobs/{gated}/approve", null)).StatusCode);
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, gated, timeout: RunLimit)).Status());
        var retry = await RetryFailedAsync(operatorClient, gated);
        var retryId = retry.GetProperty("job_id").GetString()!;
        Assert.Equal("waiting_approval", retry.Status());
        Assert.Equal("h2", retry.GetProperty("params").GetProperty("limit").GetString());
        Assert.Equal("1", retry.GetProperty("params").GetProperty("inventory_version").GetString());
        Assert.Equal(HttpStatusCode.OK, (await approver.PostAsync($"/api/v1/jobs/{retryId}/approve", null)).StatusCode);
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, retryId, timeout: RunLimit)).Status());
        Assert.Equal(["h2"], Names(await HostsOfAsync(server.Admin, retryId)));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_sharded_original_is_retried_as_one_run_over_its_failed_hosts(Provider provider)
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(provider, playbooks,
            ("site.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n    - fail: {msg: \"broken {{ inventory_hostname }}\"}\n      when: inventory_hostname in ['h2', 'h5']\n"));
        var inventory = await StoreInventoryAsync(server.Admin, Inventory(["h1", "h2", "h3", "h4", "h5", "h6"]));

        var original = await TestJobs.SubmitAsync(server.Admin, "ansible-playbook", new { playbook = "site.yml", inventory, shards = 3 });
        var done = await TestJobs.WaitAsync(server.Admin, original, timeout: RunLimit);
        Assert.Equal("failed", done.Status());
        Assert.Equal(3, done.GetProperty("children").GetArrayLength());

        // A shard is not retried on its own: its parent is.
        var shard = done.GetProperty("children")[0].GetProperty("job_id").GetString()!;
        Assert.Contains($"retry job {original}",
            await Problem.AssertAsync(await RetryAsync(server.Admin, shard, new { hosts = "failed" }), HttpStatusCode.Conflict), StringComparison.Ordinal);

        var retry = await RetryFailedAsync(server.Admin, original);
        var retryId = retry.GetProperty("job_id").GetString()!;
        Assert.False(retry.GetProperty("params").TryGetProperty("shards", out var shards) && shards.ValueKind != JsonValueKind.Null);
        Assert.Equal("h2,h5", retry.GetProperty("params").GetProperty("limit").GetString());
        var retried = await TestJobs.WaitAsync(server.Admin, retryId, timeout: RunLimit);
        Assert.Equal("failed", retried.Status());
        Assert.False(retried.TryGetProperty("children", out var children) && children.ValueKind != JsonValueKind.Null);
        Assert.Equal(["h2", "h5"], Names(await HostsOfAsync(server.Admin, retryId)));
        Assert.Contains("2 of 2 hosts failed (h2, h5)", retried.Step("playbook").GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
