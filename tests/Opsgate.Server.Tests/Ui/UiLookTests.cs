using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The console in the system's dark scheme, and used with the keyboard alone.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiLookTests(Browser browser)
{
    [Fact]
    public async Task In_the_dark_scheme_every_main_page_is_dark_and_keeps_its_contrast()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var id = await TestJobs.SubmitAsync(server.Admin, "noop", new { message = "in the dark" });
        await TestJobs.WaitAsync(server.Admin, id);
        await using var context = await browser.ContextAsync(server, colorScheme: ColorScheme.Dark);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey);
        foreach (var path in new[] { "/", "/jobs", $"/jobs/{id}", "/runbooks", "/clusters", "/audit", "/admin/keys" })
        {
            await page.GotoAsync(path);
            await Assertions.Expect(page.Locator("h1")).ToBeVisibleAsync();
            // The page background is dark (the sRGB channels of --bg in the dark scheme are all below 0x30).
            var background = await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor");
            var channels = background.Trim("rgb()".ToCharArray()).Split(',').Select(c => int.Parse(c.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.True(channels.All(c => c < 0x30), $"{path}: body background {background} is not dark");
            // axe checks colour contrast too: the dark palette must keep it.
            await Browser.AssertAccessibleAsync(page);
            if (path == "/")
                await Browser.ScreenshotAsync(page, "dashboard-dark");
        }
    }

    [Fact]
    public async Task The_keyboard_alone_skips_to_the_content_and_opens_a_job_with_a_visible_focus()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var id = await TestJobs.SubmitAsync(server.Admin, "noop", new { message = "by keyboard" });
        await TestJobs.WaitAsync(server.Admin, id);
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey, "/jobs");
        await Assertions.Expect(page.Locator("#jobs")).ToBeVisibleAsync();

        // The first Tab reaches the skip link, which moves past the menu.
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Skip to content", await page.EvaluateAsync<string>("() => document.activeElement.textContent"));
        await page.Keyboard.PressAsync("Enter");
        Assert.EndsWith("#content", page.Url, StringComparison.Ordinal);

        // Tab on to the job's link; the focused element shows a focus ring; Enter opens it.
        for (var i = 0; i < 30 && !(await page.EvaluateAsync<string>("() => document.activeElement.getAttribute('href') || ''")).EndsWith(id, StringComparison.Ordinal); i++)
            await page.Keyboard.PressAsync("Tab");
        Assert.EndsWith(id, await page.EvaluateAsync<string>("() => document.activeElement.getAttribute('href')"), StringComparison.Ordinal);
        Assert.NotEqual("none", await page.EvaluateAsync<string>("() => getComputedStyle(document.activeElement).outlineStyle"));
        await page.Keyboard.PressAsync("Enter");
        await Browser.WaitForUrlAsync(page, url => url.EndsWith($"/jobs/{id}", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "succeeded");
    }
}
