using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Ansible;
using Opsgate.Server.Tests.Infrastructure;
using static Opsgate.Server.Tests.Ansible.AnsibleFixture;

namespace Opsgate.Server.Tests.Ui;

/// <summary>
/// The console's Ansible pages: a real run's per-host table against the API and ansible's own PLAY RECAP, sorting,
/// filtering and paging, the output, the retry on failed hosts; inventories, projects and credentials as the API lists
/// them (never a secret); and what a viewer is not offered.
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class UiAnsibleTests(Browser browser)
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(180);

    /// <summary>
    /// Every host is reached (ping), h01 and h03 change something, h02 and h04 fail at "break", and one debug line
    /// carries markup that must be shown as text.
    /// </summary>
    private const string Playbook = """
        - hosts: all
          gather_facts: false
          tasks:
            - name: reach
              ping:
            - name: touch
              command: /bin/true
              when: inventory_hostname in ['h01', 'h03']
            - name: markup
              debug: {msg: "<b>not bold</b>"}
              run_once: true
            - name: break
              fail: {msg: "broken {{ inventory_hostname }}"}
              when: broken | default(false) | bool
        """;

    /// <summary>54 local hosts (h02 and h04 broken) and "gone", ssh to a closed port: 55 hosts, more than a page of 50.</summary>
    private static string Hosts()
    {
        var text = new StringBuilder($"all:\n  vars: {{{LocalVars}}}\n  hosts:\n");
        for (var i = 1; i <= 54; i++)
            text.Append($"    h{i:00}: {{broken: {(i is 2 or 4 ? "true" : "false")}}}\n");
        text.Append($"    gone: {{ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: {ClosedPort()}, ansible_user: nobody}}\n");
        return text.ToString();
    }

    private static async Task<string> CountAsync(IPage page, string host, string count) =>
        (await page.Locator($"#hosts tr[data-host='{host}'] td[data-count='{count}']").TextContentAsync())!.Trim();

    private static Task<string[]> ShownHostsAsync(IPage page) =>
        page.Locator("#hosts tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.host)");

    [Fact]
    public async Task An_ansible_runs_per_host_table_matches_the_api_and_the_recap_and_its_failed_hosts_are_retried_from_the_button()
    {
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, ("site.yml", Playbook));
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        var (_, viewerKey) = await server.CreateKeyAsync("vic", "viewer");
        var inventory = await StoreInventoryAsync(server.Admin, Hosts(), "fleet");
        var id = await TestJobs.SubmitAsync(server.Client(operatorKey), "ansible-playbook", new { playbook = "site.yml", inventory, forks = 25 });

        // The job page, open while the playbook runs, shows the hosts panel and its totals once the run ends, without a reload.
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, operatorKey, $"/jobs/{id}");
        var navigations = 0;
        page.FrameNavigated += (_, frame) => navigations += frame == page.MainFrame ? 1 : 0;
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "failed", new() { Timeout = (float)RunLimit.TotalMilliseconds });
        var panel = page.Locator("#ansible-hosts");
        await Assertions.Expect(panel.Locator("[data-total='hosts']")).ToHaveTextAsync("55");
        await Assertions.Expect(panel.Locator("[data-total='failed']")).ToHaveTextAsync("2");
        await Assertions.Expect(panel.Locator("[data-total='unreachable']")).ToHaveTextAsync("1");
        await Assertions.Expect(panel.Locator("[data-total='changed']")).ToHaveTextAsync("2");
        Assert.Equal(0, navigations);

        var events = await ReadEventsAsync(server.Admin, id, timeout: RunLimit);
        var api = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}/hosts");
        var recap = RecapFromOutput(events);
        Assert.Equal(55, api.EnumerateObject().Count());
        Assert.Equal(55, recap.Count);
        await Assertions.Expect(panel.GetByRole(AriaRole.Button, new() { Name = "Retry on failed hosts" })).ToBeVisibleAsync();
        await panel.GetByRole(AriaRole.Link, new() { Name = "Per-host results and output" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith($"/jobs/{id}/hosts", StringComparison.Ordinal));

        // First page: 50 hosts by name; every figure is the API's and ansible's own.
        await Assertions.Expect(page.Locator("#hosts tbody tr")).ToHaveCountAsync(50);
        await Assertions.Expect(page.Locator("#hosts-matching")).ToHaveTextAsync("55 of 55 hosts");
        var shown = await ShownHostsAsync(page);
        Assert.Equal(api.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).Take(50), shown);
        foreach (var host in new[] { "h01", "h02", "h03", "h04", "h05", "h49" })
        {
            var stats = FromApi(api.GetProperty(host).GetProperty("stats"));
            Assert.Equal(recap[host], stats);
            Assert.Equal(
                [stats.Ok, stats.Changed, stats.Failed, stats.Skipped, stats.Unreachable, stats.Rescued, stats.Ignored],
                [
                    int.Parse(await CountAsync(page, host, "ok")), int.Parse(await CountAsync(page, host, "changed")), int.Parse(await CountAsync(page, host, "failed")),
                    int.Parse(await CountAsync(page, host, "skipped")), int.Parse(await CountAsync(page, host, "unreachable")),
                    int.Parse(await CountAsync(page, host, "rescued")), int.Parse(await CountAsync(page, host, "ignored")),
                ]);
        }
        Assert.Equal(1, recap["h02"].Failed);
        Assert.Equal(1, recap["h01"].Changed);
        // The failed host shows its task and message.
        await Assertions.Expect(page.Locator("#hosts tr[data-host='h02'] .task")).ToHaveTextAsync("break");
        await Assertions.Expect(page.Locator("#hosts tr[data-host='h02'] .message")).ToHaveTextAsync("broken h02");
        // The output: ansible's, with its markup as text.
        var stdout = page.Locator("#stdout");
        await Assertions.Expect(stdout).ToContainTextAsync("PLAY RECAP");
        await Assertions.Expect(stdout).ToContainTextAsync("<b>not bold</b>");
        await Assertions.Expect(page.Locator("#stdout b")).ToHaveCountAsync(0);
        await page.WaitForFunctionAsync("() => document.getElementById('stdout').scrollTop > 0"); // opened at its end, the recap
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "ansible-hosts");

        // The second page has the other five.
        await page.GetByRole(AriaRole.Link, new() { Name = "Next" }).ClickAsync();
        await Assertions.Expect(page.Locator("#hosts tbody tr")).ToHaveCountAsync(5);
        Assert.Equal(["h50", "h51", "h52", "h53", "h54"], await ShownHostsAsync(page)); // "gone" sorts first

        // Sorted by failed, descending: the two failed hosts first (by name), then the rest.
        await page.GotoAsync($"/jobs/{id}/hosts");
        await page.Locator("#hosts thead a[href*='sort=failed']").ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("sort=failed", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("th[aria-sort='ascending']")).ToHaveTextAsync("failed");
        await page.Locator("#hosts thead a[href*='sort=failed']").ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("dir=desc", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("th[aria-sort='descending']")).ToHaveTextAsync("failed");
        Assert.Equal(["h02", "h04", "gone"], (await ShownHostsAsync(page)).Take(3));
        // By host, descending.
        await page.GotoAsync($"/jobs/{id}/hosts?sort=host&dir=desc");
        await Assertions.Expect(page.Locator("#hosts tbody tr").First).ToHaveAttributeAsync("data-host", "h54");

        // Filtered by outcome, then by name.
        await page.GetByLabel("Outcome").SelectOptionAsync("failed");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("outcome=failed", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#hosts-matching")).ToHaveTextAsync("2 of 55 hosts");
        Assert.Equal(["h04", "h02"], await ShownHostsAsync(page)); // the sort stays
        await page.GotoAsync($"/jobs/{id}/hosts?outcome=unreachable");
        await Assertions.Expect(page.Locator("#hosts tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#hosts tr[data-host='gone'] .status.failed")).ToHaveTextAsync("unreachable");
        await page.GotoAsync($"/jobs/{id}/hosts?outcome=changed&host=H0");
        Assert.Equal(["h01", "h03"], await ShownHostsAsync(page));
        // On a phone the table is cards and its headers are hidden: the form sorts.
        await page.SetViewportSizeAsync(390, 844);
        await page.GetByLabel("Sort by").SelectOptionAsync("ok");
        await page.GetByLabel("Order").SelectOptionAsync("desc");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("sort=ok", StringComparison.Ordinal));
        var mostOk = new[] { "h01", "h03" }.OrderByDescending(h => FromApi(api.GetProperty(h).GetProperty("stats")).Ok).ThenBy(h => h, StringComparer.Ordinal).ToList();
        await Assertions.Expect(page.Locator("#hosts tbody tr")).ToHaveCountAsync(2);
        Assert.Equal(mostOk, await ShownHostsAsync(page));
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "ansible-hosts-phone");
        await page.SetViewportSizeAsync(1280, 900);
        // A bad filter is named, not a 500.
        var bad = await page.GotoAsync($"/jobs/{id}/hosts?outcome=weird");
        Assert.Equal(400, bad!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Outcome");

        // The whole output, through the console with the session: the same text as the events carry.
        var full = await context.APIRequest.GetAsync($"/jobs/{id}/hosts?handler=Stdout");
        Assert.Equal(200, full.Status);
        Assert.StartsWith("text/plain", full.Headers["content-type"], StringComparison.Ordinal);
        Assert.Equal(string.Concat(events.Where(e => e.Type == "ansible.output" && e.Str("stream") == "stdout").Select(e => e.Str("text"))), await full.TextAsync());

        // A viewer sees the table but no retry, and is refused one posted anyway.
        await using var viewerContext = await browser.ContextAsync(server);
        var viewer = await Browser.SignInAsync(viewerContext, viewerKey, $"/jobs/{id}");
        await Assertions.Expect(viewer.Locator("#ansible-hosts [data-total='hosts']")).ToHaveTextAsync("55");
        await Assertions.Expect(viewer.GetByRole(AriaRole.Button, new() { Name = "Retry on failed hosts" })).ToHaveCountAsync(0);
        await Assertions.Expect(viewer.GetByRole(AriaRole.Button, new() { Name = "Retry" })).ToHaveCountAsync(0);
        await viewer.GotoAsync($"/jobs/{id}/hosts");
        await Assertions.Expect(viewer.Locator("#hosts tbody tr")).ToHaveCountAsync(50);
        await Assertions.Expect(viewer.GetByRole(AriaRole.Button, new() { Name = "Retry on failed hosts" })).ToHaveCountAsync(0);
        var token = await viewer.Locator("input[name='__RequestVerificationToken']").First.InputValueAsync();
        var refused = await viewerContext.APIRequest.PostAsync($"/jobs/{id}/hosts?handler=RetryFailed", new APIRequestContextOptions
        {
            Form = viewerContext.APIRequest.CreateFormData().Set("__RequestVerificationToken", token),
            MaxRedirects = 0,
        });
        Assert.Equal((int)HttpStatusCode.Forbidden, refused.Status);
        Assert.False((await TestJobs.GetAsync(server.Admin, id)).TryGetProperty("retries", out var none) && none.ValueKind == JsonValueKind.Array);

        // The operator presses the button: a new job over the failed and unreachable hosts, linked to the original.
        await page.GotoAsync($"/jobs/{id}/hosts");
        await page.GetByRole(AriaRole.Button, new() { Name = "Retry on failed hosts" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => !url.Contains(id, StringComparison.Ordinal) && url.Contains("/jobs/", StringComparison.Ordinal));
        var retryId = page.Url[(page.Url.LastIndexOf('/') + 1)..];
        var retry = await TestJobs.GetAsync(server.Admin, retryId);
        Assert.Equal(id, retry.GetProperty("retry_of").GetString());
        Assert.Equal("gone,h02,h04", retry.GetProperty("params").GetProperty("limit").GetString());
        Assert.Equal("olga", retry.GetProperty("actor").GetString());
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=job.retry");
        var entry = audit.GetProperty("items").EnumerateArray().Single(e => e.GetProperty("status").GetString() == "success");
        Assert.Equal(retryId, entry.GetProperty("job_id").GetString());
        Assert.Equal(id, entry.GetProperty("resource_name").GetString());
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), e => e.GetProperty("status").GetString() == "denied" && e.GetProperty("actor").GetString() == "vic");
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, retryId, timeout: RunLimit)).Status());
        Assert.Equal(["gone", "h02", "h04"], (await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{retryId}/hosts")).EnumerateObject().Select(p => p.Name));

        // The runs page lists both with their totals.
        await page.GotoAsync("/ansible/runs");
        await Assertions.Expect(page.Locator($"#runs tr[data-job='{id}'] td[data-count='hosts']")).ToHaveTextAsync("55");
        await Assertions.Expect(page.Locator($"#runs tr[data-job='{retryId}'] td[data-count='hosts']")).ToHaveTextAsync("3");
        await Assertions.Expect(page.Locator($"#runs tr[data-job='{retryId}'] td[data-count='failed']")).ToHaveTextAsync("2");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "ansible-runs");
    }

    [Fact]
    public async Task Inventories_projects_and_credentials_show_what_the_api_lists_and_never_a_secret()
    {
        using var repo = await GitRepo.CreateAsync();
        var commit = await repo.CommitAsync("one", ("site.yml", "- hosts: all\n  tasks: []\n"));
        using var playbooks = new TempDir();
        await using var server = await StartAsync(Provider.Sqlite, playbooks, [repo.AllowArg]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        var (_, viewerKey) = await server.CreateKeyAsync("vic", "viewer");
        const string InventorySecret = "inv-UNIQUE-s3cret-pw";
        const string SshSecret = "UNIQUE-SSH-SECRET-MATERIAL";
        const string Password = "hunter2-UNIQUE-PASSWORD";
        var groups = $$$"""
            all:
              children:
                web:
                  hosts: {w1: {ansible_password: {{{InventorySecret}}}}, w2: {}}
                prod:
                  children: {web: {}}
                  hosts: {d1: {}}
            """;
        await StoreInventoryAsync(server.Admin, "all:\n  hosts: {w1: {}}\n", "web");
        await StoreInventoryAsync(server.Admin, groups, "web");
        await StoreInventoryAsync(server.Admin, Inventory(["a1", "a2", "a3"]), "adhoc");
        var created = await server.Admin.PostAsJsonAsync("/api/v1/projects", new { name = "site", git_repo = "file://" + repo.Bare, @ref = "main" }, OpsgateServer.Json);
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        foreach (var credential in new object[]
        {
            new { name = "machines", kind = "ssh_key", secret = $"-----BEGIN OPENSSH PRIVATE KEY-----\n{SshSecret}\n-----END OPENSSH PRIVATE KEY-----\n" },
            new { name = "deploy", kind = "password", username = "deployer", secret = Password, use = new { min_role = "admin", keys = new[] { "olga" } } },
        })
        {
            var response = await server.Admin.PostAsJsonAsync("/api/v1/credentials", credential, OpsgateServer.Json);
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        }

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, operatorKey, "/inventories");
        var inventories = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories");
        await Assertions.Expect(page.Locator("#inventories tbody tr")).ToHaveCountAsync(inventories.GetProperty("items").GetArrayLength());
        foreach (var i in inventories.GetProperty("items").EnumerateArray())
        {
            var row = page.Locator($"#inventories tr[data-inventory='{i.GetProperty("name").GetString()}']");
            await Assertions.Expect(row.Locator("td[data-count='hosts']")).ToHaveTextAsync(i.GetProperty("host_count").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Assertions.Expect(row.Locator("td[data-label='Latest version']")).ToHaveTextAsync(i.GetProperty("version").GetString()!);
        }
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "inventories");

        await page.GetByRole(AriaRole.Link, new() { Name = "web", Exact = true }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/inventories/web", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#versions tbody tr")).ToHaveCountAsync(2);
        var hosts = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/inventories/web/hosts");
        await Assertions.Expect(page.Locator("#inventory-hosts tbody tr")).ToHaveCountAsync(hosts.GetProperty("items").GetArrayLength());
        foreach (var h in hosts.GetProperty("items").EnumerateArray())
        {
            await Assertions.Expect(page.Locator($"#inventory-hosts tr[data-host='{h.GetProperty("name").GetString()}'] td[data-label='Groups']"))
                .ToHaveTextAsync(string.Join(", ", h.GetProperty("groups").EnumerateArray().Select(g => g.GetString())));
        }
        await Assertions.Expect(page.Locator("#inventory-hosts tr[data-host='w1'] td[data-label='Groups']")).ToHaveTextAsync("prod, web");
        Assert.DoesNotContain(InventorySecret, await page.ContentAsync(), StringComparison.Ordinal);
        await Browser.AssertAccessibleAsync(page);
        // The older version, by its link.
        await page.GetByRole(AriaRole.Link, new() { Name = "1", Exact = true }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("version=1", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#inventory-hosts tbody tr")).ToHaveCountAsync(1);
        Assert.Equal(404, (await page.GotoAsync("/inventories/nothere"))!.Status);

        // Projects: never synced yet (a branch is resolved at the first fetch); Sync fetches and shows the commit.
        await page.GotoAsync("/projects");
        var project = page.Locator("#projects tr[data-project='site']");
        await Assertions.Expect(project.Locator("td[data-label='Ref']")).ToHaveTextAsync("main");
        await Assertions.Expect(project.Locator("td[data-label='Last sync']")).ToContainTextAsync("never synced");
        await project.GetByRole(AriaRole.Button, new() { Name = "Sync site" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("synced=site", StringComparison.Ordinal));
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync(commit);
        await Assertions.Expect(project.Locator("td[data-label='Commit']")).ToHaveAttributeAsync("data-commit", commit);
        var listed = (await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/projects")).GetProperty("items")[0];
        Assert.Equal(commit, listed.GetProperty("commit").GetString());
        await Assertions.Expect(project.Locator("td[data-label='Last sync']")).ToContainTextAsync("synced");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "projects");
        var syncs = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=project.sync");
        var synced = Assert.Single(syncs.GetProperty("items").EnumerateArray());
        Assert.Equal(("success", "olga", "site"), (synced.GetProperty("status").GetString(), synced.GetProperty("actor").GetString(), synced.GetProperty("resource_name").GetString()));

        // Credentials: what the API lists, never the secrets.
        await page.GotoAsync("/credentials");
        var credentials = await server.Client(operatorKey).GetFromJsonAsync<JsonElement>("/api/v1/credentials");
        await Assertions.Expect(page.Locator("#credentials tbody tr")).ToHaveCountAsync(credentials.GetProperty("items").GetArrayLength());
        foreach (var c in credentials.GetProperty("items").EnumerateArray())
        {
            var row = page.Locator($"#credentials tr[data-credential='{c.GetProperty("name").GetString()}']");
            await Assertions.Expect(row.Locator("td[data-label='Kind']")).ToHaveTextAsync(c.GetProperty("kind").GetString()!);
            await Assertions.Expect(row.Locator("td[data-label='Who may use it']")).ToContainTextAsync($"role {c.GetProperty("use").GetProperty("min_role").GetString()}");
        }
        await Assertions.Expect(page.Locator("#credentials tr[data-credential='deploy'] td[data-label='Username']")).ToHaveTextAsync("deployer");
        await Assertions.Expect(page.Locator("#credentials tr[data-credential='deploy'] td[data-label='Who may use it']")).ToContainTextAsync("keys [olga]");
        var html = await page.ContentAsync();
        foreach (var secret in new[] { SshSecret, Password, "PRIVATE KEY" })
            Assert.DoesNotContain(secret, html, StringComparison.Ordinal);
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "credentials");

        // A viewer: the same inventories and projects, no Sync, no credentials.
        await using var viewerContext = await browser.ContextAsync(server);
        var viewer = await Browser.SignInAsync(viewerContext, viewerKey, "/projects");
        await Assertions.Expect(viewer.Locator("#projects tr[data-project='site']")).ToBeVisibleAsync();
        await Assertions.Expect(viewer.GetByRole(AriaRole.Button, new() { Name = "Sync site" })).ToHaveCountAsync(0);
        await Assertions.Expect(viewer.GetByRole(AriaRole.Link, new() { Name = "Credentials" })).ToHaveCountAsync(0);
        await Assertions.Expect(viewer.GetByRole(AriaRole.Link, new() { Name = "Inventories" })).ToBeVisibleAsync();
        var token = await viewer.Locator("input[name='__RequestVerificationToken']").First.InputValueAsync();
        var refused = await viewerContext.APIRequest.PostAsync("/projects?handler=Sync", new APIRequestContextOptions
        {
            Form = viewerContext.APIRequest.CreateFormData().Set("__RequestVerificationToken", token).Set("name", "site"),
            MaxRedirects = 0,
        });
        Assert.Equal((int)HttpStatusCode.Forbidden, refused.Status);
        Assert.Equal(403, (await viewer.GotoAsync("/credentials"))!.Status);
        var audit = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?action=project.sync");
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), e => e.GetProperty("status").GetString() == "denied" && e.GetProperty("actor").GetString() == "vic");
    }
}
