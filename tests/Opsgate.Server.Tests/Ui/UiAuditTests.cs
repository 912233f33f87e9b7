using System.Globalization;
using Dapper;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The audit page: filters and keyset paging over the API's query, and the hash chain's verification.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiAuditTests(Browser browser)
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
}
