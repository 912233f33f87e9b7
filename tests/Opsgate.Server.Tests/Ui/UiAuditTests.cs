using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Microsoft.Playwright;
using Opsgate.Server.Audit;
using Opsgate.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The audit page: filters and keyset paging over the API's query, and the hash chain's verification.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiAuditTests(Browser browser, ITestOutputHelper output)
{
    [Fact]
    public async Task Filters_narrow_the_log_pages_continue_and_a_tampered_row_shows_the_chain_broken()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        for (var i = 0; i < 55; i++)
            await server.CreateKeyAsync($"key{i:00}", "viewer");
        var (_, viewerKey) = await server.CreateKeyAsync("vera", "viewer", ["prod"]);

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey, "/audit");
        await Assertions.Expect(page.Locator("#chain")).ToHaveAttributeAsync("data-chain", "intact");
        await Assertions.Expect(page.Locator("#chain")).ToContainTextAsync("All 57 entries match their hashes and links."); // 56 keys and this sign-in
        await Assertions.Expect(page.Locator("#chain")).ToContainTextAsync("Checked ");
        var rows = page.Locator("#entries tbody tr");
        await Assertions.Expect(rows).ToHaveCountAsync(50);
        await Assertions.Expect(rows.First).ToHaveAttributeAsync("data-action", "session.create"); // newest first
        await Browser.AssertAccessibleAsync(page);


        // Filters narrow the list; paging continues after the last entry shown with the same filters.
        await page.GetByLabel("Action").FillAsync("apikey.create");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("action=apikey.create", StringComparison.Ordinal));
        await Assertions.Expect(rows).ToHaveCountAsync(50);
        Assert.Equal(Enumerable.Range(7, 50).Reverse().Select(i => i.ToString(CultureInfo.InvariantCulture)),
            await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.entry)"));
        await page.GetByRole(AriaRole.Link, new() { Name = "Older entries" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("before=7", StringComparison.Ordinal));
        await Assertions.Expect(rows).ToHaveCountAsync(6);
        Assert.Equal(["6", "5", "4", "3", "2", "1"], await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.entry)"));
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Older entries" })).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByLabel("Action")).ToHaveValueAsync("apikey.create");

        // Details of an entry: the (redacted) request body and the chain fields.
        var sixth = page.Locator("tr[data-entry='6']");
        await sixth.GetByText("Entry 6").ClickAsync();
        await Assertions.Expect(sixth.Locator("details")).ToContainTextAsync("\"name\":\"key05\"");
        await Assertions.Expect(sixth.Locator("details dd.mono").Nth(1)).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^[0-9a-f]{64}$"));
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "audit");

        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var yesterday = DateTime.UtcNow.AddDays(-1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        await page.GotoAsync($"/audit?action=session.create&from={today}&to={today}");
        await Assertions.Expect(rows).ToHaveCountAsync(1);
        await page.GotoAsync($"/audit?to={yesterday}");
        await Assertions.Expect(page.GetByText("No entry matches.")).ToBeVisibleAsync();
        await page.GotoAsync("/audit?actor=nobody");
        await Assertions.Expect(page.GetByText("No entry matches.")).ToBeVisibleAsync();
        var bad = await page.GotoAsync("/audit?from=yesterday");
        Assert.Equal(400, bad!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("From: a date such as 2026-12-07.");

        // A reader with a namespace allowlist sees what the API shows it: its own entries, not the admin's.
        await using var scoped = await browser.ContextAsync(server);
        var veras = await Browser.SignInAsync(scoped, viewerKey, "/audit");
        await Assertions.Expect(veras.Locator("#entries tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(veras.Locator("#entries tbody tr").First).ToHaveAttributeAsync("data-action", "session.create");

        // A row changed behind Opsgate's back: the page keeps the last result until "Verify now" finds it.
        await using (var db = await server.OpenDatabaseAsync())
            await db.ExecuteAsync("UPDATE audit_log SET actor = 'someone-else' WHERE id = 3");
        await page.GotoAsync("/audit");
        await Assertions.Expect(page.Locator("#chain")).ToHaveAttributeAsync("data-chain", "intact");
        await page.GetByRole(AriaRole.Button, new() { Name = "Verify now" }).ClickAsync();
        await Assertions.Expect(page.Locator("#chain")).ToHaveAttributeAsync("data-chain", "broken");
        await Assertions.Expect(page.Locator("#chain")).ToContainTextAsync("Entry 3 does not match: the entry's contents do not match its hash.");
        await Browser.AssertAccessibleAsync(page);
    }

    [Fact]
    public async Task With_100000_entries_a_filtered_page_reads_an_index_and_the_chain_verifies()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        const int Total = 100_000;
        var start = DateTime.UtcNow.AddDays(-10);
        // A valid chain written behind the server's back: one action in a hundred is k8s.scale, one entry in ten acts in
        // a namespace (staging for one in ten of those), twenty actors.
        var entries = new List<AuditEntry>(Total);
        var prev = AuditChain.Genesis;
        for (var i = 1; i <= Total; i++)
        {
            var e = new AuditEntry
            {
                Id = i, Ts = start.AddSeconds(i * 8), Actor = $"user{i % 20}", SourceIp = "127.0.0.1",
                Action = i % 100 == 7 ? "k8s.scale" : i % 2 == 0 ? "job.submit" : "apikey.create", ResourceKind = "deployment",
                Namespace = i % 10 == 0 ? (i % 100 == 0 ? "staging" : "prod") : null, ResourceName = $"web{i % 7}",
                RequestBody = "{\"replicas\":3}", Status = "success", HttpStatus = 200, PrincipalId = $"ak_user{i % 20}", AuthMethod = "apikey",
                RequestId = $"r{i}", Cluster = i % 10 == 0 ? "default" : null, PrevHash = prev,
            };
            e.Ts = new DateTime(e.Ts.Ticks - e.Ts.Ticks % 10, DateTimeKind.Utc); // the microseconds both databases keep
            e.Hash = AuditChain.ComputeHash(e);
            prev = e.Hash;
            entries.Add(e);
        }
        await using (var connection = await server.OpenDatabaseAsync())
        {
            await using var tx = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync(
                "INSERT INTO audit_log (id, ts, actor, source_ip, action, resource_kind, namespace, resource_name, request_body, status, http_status, " +
                "error_message, principal_id, auth_method, request_id, dry_run, job_id, cluster, prev_hash, hash) VALUES (@Id, @Ts, @Actor, @SourceIp, " +
                "@Action, @ResourceKind, @Namespace, @ResourceName, @RequestBody, @Status, @HttpStatus, @ErrorMessage, @PrincipalId, @AuthMethod, " +
                "@RequestId, @DryRun, @JobId, @Cluster, @PrevHash, @Hash)", entries, tx);
            await tx.CommitAsync();
            await connection.ExecuteAsync("ANALYZE", commandType: System.Data.CommandType.Text);
            foreach (var (name, page) in new[]
            {
                ("action", "SELECT id FROM audit_log WHERE action = 'k8s.scale' AND id < 90000 ORDER BY id DESC LIMIT 51"),
                ("namespace", "SELECT id FROM audit_log WHERE namespace = 'staging' AND id < 90000 ORDER BY id DESC LIMIT 51"),
            })
            {
                var plan = string.Join(" | ", (await connection.QueryAsync("EXPLAIN QUERY PLAN " + page)).Select(row => (string)row.detail));
                output.WriteLine($"plan ({name}): {plan}");
                Assert.Contains($"ix_audit_log_{name}_id", plan, StringComparison.Ordinal);
            }
        }

        var watch = Stopwatch.StartNew();
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        output.WriteLine($"verify: {verify.GetProperty("entries").GetInt64()} entries in {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());

        using var http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = server.BaseAddress };
        var form = await http.GetStringAsync("/signin");
        var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        (await http.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["key"] = OpsgateServer.AdminKey, ["__RequestVerificationToken"] = token }))).EnsureSuccessStatusCode();
        // The first visit waits for a verification only so long; "Verify now" takes as long as it takes.
        watch.Restart();
        var first = await http.GetStringAsync("/audit");
        output.WriteLine($"/audit, first visit: {watch.Elapsed.TotalMilliseconds:0} ms, chain {System.Text.RegularExpressions.Regex.Match(first, "data-chain=\"([a-z]+)\"").Groups[1].Value}");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"the first visit took {watch.Elapsed}");
        token = System.Text.RegularExpressions.Regex.Match(first, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        watch.Restart();
        var verified = await http.PostAsync("/audit?handler=Verify", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        output.WriteLine($"Verify now: {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.Contains("data-chain=\"intact\"", await verified.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        foreach (var query in new[] { "", "?action=k8s.scale", "?actor=user7", "?namespace=staging", "?cluster=default", $"?from={start.AddDays(3):yyyy-MM-dd}&to={start.AddDays(3):yyyy-MM-dd}" })
        {
            var times = new List<double>();
            string? before = null;
            for (var pageNo = 0; pageNo < 5; pageNo++)
            {
                var url = "/audit" + query + (before is null ? "" : (query.Length == 0 ? "?" : "&") + "before=" + before);
                watch.Restart();
                var html = await http.GetStringAsync(url);
                times.Add(watch.Elapsed.TotalMilliseconds);
                var ids = System.Text.RegularExpressions.Regex.Matches(html, "data-entry=\"([0-9]+)\"").Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
                Assert.Equal(50, ids.Count);
                Assert.True(before is null || ids[0] < long.Parse(before, CultureInfo.InvariantCulture), "a page continues after the last one");
                before = ids[^1].ToString(CultureInfo.InvariantCulture);
            }
            times.Sort();
            output.WriteLine($"/audit{query}: 5 pages, median {times[2]:0.0} ms, max {times[^1]:0.0} ms");
            // Generous for a shared 2-core machine; a page that walked every entry would take far longer at scale.
            Assert.True(times[2] < 400, $"/audit{query}: median {times[2]:0.0} ms");
        }
    }
}
