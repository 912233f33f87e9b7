using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>kill -9 of the server during a playbook run: the orphaned run stops itself, the job fails with the reason, nothing recorded is lost.</summary>
public sealed class AnsibleCrashTests
{
    // The wait task's length comes from a file the test rewrites before the retry: a long run first, a short one after.
    private const string Slow = """
        - hosts: all
          gather_facts: false
          tasks:
            - name: before
              debug: {msg: "starting {{ inventory_hostname }}"}
            - name: wait
              command: sleep 1
              loop: "{{ range(lookup('file', rounds_file) | int) | list }}"
            - name: after
              debug: {msg: "done {{ inventory_hostname }}"}
        """;

    // Where runs kept their private files before they moved under {DataDir}/run.
    private static readonly string[] OldTempPrefixes = ["opsgate-ansible-", "opsgate-git-", "opsgate-inventory-", "opsgate-playbook-", "opsgate-checkout-"];

    [Fact]
    public async Task Kill_9_of_the_server_mid_run_stops_ansible_and_the_restarted_server_fails_the_job_without_running_it_again()
    {
        var secret = "crash-secret-" + Guid.NewGuid().ToString("N");
        using var work = new TempDir();
        using var playbooks = new TempDir();
        var playbook = Path.Combine(playbooks.Path, "slow.yml");
        await File.WriteAllTextAsync(playbook, Slow);
        var rounds = Path.Combine(playbooks.Path, "rounds");
        await File.WriteAllTextAsync(rounds, "120");
        var environment = new Dictionary<string, string>
        {
            ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = OpsgateServer.AdminKey,
            ["OPSGATE_JOBS__LEASEDURATION"] = "00:00:02",
            ["OPSGATE_JOBS__POLLINTERVAL"] = "00:00:00.200",
            ["OPSGATE_ANSIBLE__PLAYBOOKDIRECTORY"] = playbooks.Path,
        };
        var inventory = Inventory(["h1", "h2", "h3", "h4"]);

        string id;
        List<SseEvent> before;
        await using (var first = await OpsgateProcess.StartReadyAsync(work.Path, environment: environment))
        {
            var admin = first.Client(OpsgateServer.AdminKey);
            id = await TestJobs.SubmitAsync(admin, "ansible-playbook",
                new { playbook = "slow.yml", inventory = await StoreInventoryAsync(admin, inventory), extra_vars = new { rounds_file = rounds, api_token = secret } });
            // Mid-run: every host got past the first task and the wait is going.
            before = await ReadEventsAsync(admin, id, e => e.Type == "ansible.item_ok" && e.Str("task") == "wait", timeout: TimeSpan.FromSeconds(90));
            Assert.Equal(4, before.Count(e => e.Type == "ansible.runner_ok" && e.Str("task") == "before"));
            Assert.NotEmpty(ProcessesWith(playbook));
            // The run's extra vars are in its private directory under the data dir, owner-only, not in /tmp.
            var run = Path.Combine(first.DataDir, "run");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(run));
            Assert.NotEmpty(FilesContaining(run, secret));
            Assert.Empty(OldTempPrefixes.SelectMany(prefix => Directory.EnumerateDirectories(Path.GetTempPath(), prefix + "*")).SelectMany(d => FilesContaining(d, secret)));
            await first.KillServerOnlyAsync();
        }

        // The orphaned ansible-playbook noticed its server is gone and stopped, forks and all.
        var watch = Stopwatch.StartNew();
        while (ProcessesWith(playbook) is { Count: > 0 } left)
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(20))
            {
                foreach (var pid in left)
                    KillQuietly(pid); // not left behind by a failed test
                Assert.Fail($"ansible-playbook still ran {watch.Elapsed} after the server was killed: pids {string.Join(", ", left)}");
            }
            await Task.Delay(100);
        }

        await using var second = await OpsgateProcess.StartReadyAsync(work.Path, environment: environment);
        // The killed server's run directory, secret and all, went at the restart: nothing holds the secret on disk.
        Assert.Empty(FilesContaining(Path.Combine(second.DataDir, "run"), secret));
        Assert.Empty(OldTempPrefixes.SelectMany(prefix => Directory.EnumerateDirectories(Path.GetTempPath(), prefix + "*")).SelectMany(d => FilesContaining(d, secret)));
        var client = second.Client(OpsgateServer.AdminKey);
        var job = await TestJobs.WaitAsync(client, id, timeout: TimeSpan.FromSeconds(60));
        Assert.Equal("failed", job.Status());
        Assert.Contains("the server stopped during the playbook run; it was not re-run automatically (a playbook may not be safe to run twice): retry the job to run it again",
            job.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, job.Step("playbook").GetProperty("attempts").GetInt32());

        // Every event seen before the kill is still there, under the same seq; the playbook did not run again.
        var after = await ReadEventsAsync(client, id);
        var bySeq = after.ToDictionary(e => e.Id);
        foreach (var seen in before)
        {
            Assert.True(bySeq.TryGetValue(seen.Id, out var kept), $"event {seen.Id} ({seen.Type}) was lost");
            Assert.Equal(seen.Type, kept.Type);
            Assert.Equal(seen.Data.GetRawText(), kept.Data.GetRawText());
        }
        Assert.Equal(1, after.Count(e => e.Type == "ansible.playbook_start"));
        Assert.DoesNotContain(after, e => e.Type == "ansible.stats");

        // A person retries it; this time it runs to the end.
        await File.WriteAllTextAsync(rounds, "1");
        using var retry = await client.PostAsync($"/api/v1/jobs/{id}/retry", null);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        job = await TestJobs.WaitAsync(client, id, j => j.Status() is "succeeded" or "failed" && j.GetProperty("attempt").GetInt32() == 3, TimeSpan.FromSeconds(90));
        Assert.Equal("succeeded", job.Status());
        var results = await client.GetStringAsync($"/api/v1/jobs/{id}/hosts");
        foreach (var host in new[] { "h1", "h2", "h3", "h4" })
            Assert.Contains($"\"{host}\"", results, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kill_9_during_a_sharded_run_the_parent_resumes_its_wait_and_reports_the_interrupted_shards()
    {
        using var work = new TempDir();
        using var playbooks = new TempDir();
        var playbook = Path.Combine(playbooks.Path, "slow.yml");
        await File.WriteAllTextAsync(playbook, Slow);
        var rounds = Path.Combine(playbooks.Path, "rounds");
        await File.WriteAllTextAsync(rounds, "120");
        var environment = new Dictionary<string, string>
        {
            ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = OpsgateServer.AdminKey,
            ["OPSGATE_JOBS__LEASEDURATION"] = "00:00:02",
            ["OPSGATE_JOBS__POLLINTERVAL"] = "00:00:00.200",
            ["OPSGATE_JOBS__CHILDWORKERS"] = "2",
            ["OPSGATE_ANSIBLE__PLAYBOOKDIRECTORY"] = playbooks.Path,
        };

        string id;
        List<SseEvent> before;
        await using (var first = await OpsgateProcess.StartReadyAsync(work.Path, environment: environment))
        {
            var admin = first.Client(OpsgateServer.AdminKey);
            id = await TestJobs.SubmitAsync(admin, "ansible-playbook",
                new { playbook = "slow.yml", inventory = await StoreInventoryAsync(admin, Inventory(["h1", "h2", "h3", "h4"])), extra_vars = new { rounds_file = rounds }, shards = 2 });
            // Both shards are mid-run, and their events reached the parent's stream.
            var waiting = new HashSet<int>();
            before = await ReadEventsAsync(admin, id, e =>
            {
                if (e.Type == "ansible.item_ok" && e.Body.TryGetProperty("shard", out var shard))
                    waiting.Add(shard.GetInt32());
                return waiting.Count == 2;
            }, timeout: TimeSpan.FromSeconds(120));
            await first.KillServerOnlyAsync();
        }
        var watch = Stopwatch.StartNew();
        while (ProcessesWith(playbook) is { Count: > 0 } left)
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(20))
            {
                foreach (var pid in left)
                    KillQuietly(pid);
                Assert.Fail($"ansible-playbook still ran {watch.Elapsed} after the server was killed: pids {string.Join(", ", left)}");
            }
            await Task.Delay(100);
        }

        await using var second = await OpsgateProcess.StartReadyAsync(work.Path, environment: environment);
        var client = second.Client(OpsgateServer.AdminKey);
        var job = await TestJobs.WaitAsync(client, id, timeout: TimeSpan.FromSeconds(90));
        Assert.Equal("failed", job.Status());
        var error = job.GetProperty("error").GetString()!;
        Assert.Contains("shard 0 (job ", error, StringComparison.Ordinal);
        Assert.Contains("shard 1 (job ", error, StringComparison.Ordinal);
        Assert.Contains("the server stopped during the playbook run", error, StringComparison.Ordinal);
        var children = job.GetProperty("children").EnumerateArray().Select(c => c.GetProperty("job_id").GetString()!).ToList();
        Assert.Equal(2, children.Count);

        // Nothing seen before the kill is lost, and every shard event reached the parent exactly once.
        var after = await ReadEventsAsync(client, id);
        var bySeq = after.ToDictionary(e => e.Id);
        foreach (var seen in before)
            Assert.Equal(seen.Data.GetRawText(), bySeq[seen.Id].Data.GetRawText());
        for (var shard = 0; shard < 2; shard++)
        {
            var index = shard;
            var seqs = after.Where(e => e.Body.ValueKind == JsonValueKind.Object && e.Body.TryGetProperty("shard", out var s) && s.GetInt32() == index
                    && e.Body.TryGetProperty("ansible_seq", out _))
                .Select(e => e.Body.GetProperty("ansible_seq").GetInt64()).ToList();
            Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        }

        // A retry runs every shard again, as new child jobs.
        await File.WriteAllTextAsync(rounds, "1");
        using var retry = await client.PostAsync($"/api/v1/jobs/{id}/retry", null);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        job = await TestJobs.WaitAsync(client, id, j => j.Status() is "succeeded" or "failed" && j.GetProperty("attempt").GetInt32() == 3, TimeSpan.FromSeconds(120));
        Assert.Equal("succeeded", job.Status());
        var again = job.GetProperty("children").EnumerateArray().ToList();
        Assert.Equal(2, again.Count);
        Assert.All(again, c => Assert.Equal("succeeded", c.GetProperty("status").GetString()));
        Assert.Empty(again.Select(c => c.GetProperty("job_id").GetString()!).Intersect(children));
        Assert.Equal(4, (await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts")).EnumerateObject().Count());
    }

    private static List<string> FilesContaining(string root, string text)
    {
        if (!Directory.Exists(root))
            return [];
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        try
        {
            return Directory.EnumerateFiles(root, "*", options).Where(file =>
            {
                try
                {
                    return File.ReadAllText(file).Contains(text, StringComparison.Ordinal);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return false; // a socket, or gone
                }
            }).ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return []; // another test's directory, deleted meanwhile
        }
    }

    private static void KillQuietly(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // Gone already.
        }
    }
}
