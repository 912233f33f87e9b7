using System.Net;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The API keys page: a key made from the console is shown once and works; revocation; the admin-only rule.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiAdminKeysTests(Browser browser)
{
    [Fact]
    public async Task An_admin_creates_a_key_that_is_shown_once_and_revokes_it()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey);
        await page.GetByRole(AriaRole.Link, new() { Name = "API keys" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "API keys", Level = 1 })).ToBeVisibleAsync();
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "admin-keys");

        // Refused by the API's rules, with the API's words; what was typed stays.
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("Deploy Bot!");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("name must be");
        await Assertions.Expect(page.GetByLabel("Name", new() { Exact = true })).ToHaveValueAsync("Deploy Bot!");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("deployer");
        await page.GetByLabel("Namespaces (blank: all)").FillAsync("prod, bad_ns");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("namespaces[1]");

        await page.GetByLabel("Namespaces (blank: all)").FillAsync("prod, staging");
        await page.GetByLabel("Role").SelectOptionAsync("operator");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Key deployer created" })).ToBeVisibleAsync();
        var key = await page.GetByLabel("The key", new() { Exact = false }).InputValueAsync();
        Assert.StartsWith("og_", key, StringComparison.Ordinal);
        var row = page.Locator("#keys tbody tr", new() { HasText = "deployer" });
        await Assertions.Expect(row).ToContainTextAsync("operator");
        await Assertions.Expect(row).ToContainTextAsync("prod, staging");

        // The key works on the API with the role and allowlist chosen; it is never shown again.
        var api = server.Client(key);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/v1/jobs")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await api.GetAsync("/api/v1/apikeys")).StatusCode);
        await page.GotoAsync("/admin/keys");
        await Assertions.Expect(page.Locator("#keys")).ToContainTextAsync("deployer");
        Assert.DoesNotContain(key, await page.ContentAsync(), StringComparison.Ordinal);
        var audit = await server.Admin.GetStringAsync("/api/v1/audit?action=apikey.create&limit=10");
        Assert.Contains("\"status\":\"success\"", audit, StringComparison.Ordinal);
        Assert.Contains("\"status\":\"error\"", audit, StringComparison.Ordinal);
        Assert.DoesNotContain(key, audit, StringComparison.Ordinal);

        await row.GetByRole(AriaRole.Button, new() { Name = "Revoke deployer" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("is revoked");
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.GetAsync("/api/v1/jobs")).StatusCode);
        await Assertions.Expect(page.Locator("#keys tbody tr", new() { HasText = "deployer" })).ToHaveCountAsync(0);
        await page.GetByLabel("Show revoked keys").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await Assertions.Expect(page.Locator("#keys tbody tr", new() { HasText = "deployer" })).ToContainTextAsync("revoked");

        // The last admin key cannot be revoked: the API's 409, in words.
        await page.Locator("#keys tbody tr", new() { HasText = "bootstrap" }).GetByRole(AriaRole.Button).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("is the last active admin key");
    }

    [Fact]
    public async Task An_operator_is_not_offered_the_page_and_is_refused_it()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (_, key) = await server.CreateKeyAsync("otto", "operator");
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, key);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Dashboard" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "API keys" })).ToHaveCountAsync(0);
        var response = await page.GotoAsync("/admin/keys");
        Assert.Equal(403, response!.Status);
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("this requires role admin or higher; otto has role operator");
        var audit = await server.Admin.GetStringAsync("/api/v1/audit?actor=otto&status=denied&limit=10");
        Assert.Contains("\"http_status\":403", audit, StringComparison.Ordinal);
    }
}
