using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>
/// One headless Debian Chromium (<c>/usr/bin/chromium</c>, installed by scripts/test.sh) driven by Playwright, shared
/// by the console's browser tests. Playwright's driver and its Node.js come in its NuGet package (copied next to the
/// test assembly at build); no browser is downloaded.
/// </summary>
public sealed class Browser : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Instance { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: run scripts/test.sh, which installs Debian's chromium package");
        _playwright = await Playwright.CreateAsync();
        Instance = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            // Root in a container: Chromium's sandbox needs user namespaces it may not get; /dev/shm may be small.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update"],
        });
    }

    public async Task DisposeAsync()
    {
        if (Instance is not null)
            await Instance.DisposeAsync();
        _playwright?.Dispose();
    }

    /// <summary>A fresh browser profile (cookies, storage) for one user of <paramref name="server"/>, at 1280 px.</summary>
    public async Task<IBrowserContext> ContextAsync(OpsgateServer server, ViewportSize? viewport = null, ColorScheme colorScheme = ColorScheme.Light)
    {
        var context = await Instance.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = server.BaseAddress.ToString().TrimEnd('/'),
            ViewportSize = viewport ?? new ViewportSize { Width = 1280, Height = 900 },
            ColorScheme = colorScheme,
        });
        // Generous: the browser tests share two cores with the rest of the suite; a wait that passes returns at once.
        context.SetDefaultTimeout(45_000);
        Assertions.SetDefaultExpectTimeout(20_000);
        return context;
    }

    /// <summary>Signs in through the form and waits for the page it leads to.</summary>
    public static async Task<IPage> SignInAsync(IBrowserContext context, string key, string path = "/")
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync(path, new PageGotoOptions { WaitUntil = WaitUntilState.Commit });
        await WaitForUrlAsync(page, url => url.Contains("/signin", StringComparison.Ordinal));
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await WaitForUrlAsync(page, url => !url.Contains("/signin", StringComparison.Ordinal));
        return page;
    }

    /// <summary>
    /// Waits until the page's address matches <paramref name="match"/>, that is until a navigation to it has committed.
    /// Playwright's own WaitForURL waits for the load event when the address already matches, and after a form post
    /// and redirect that event was missed under load (CI, twice: "NetworkIdle event fired", then a timeout with the
    /// page shown). The assertions that follow retry until the page shows what they expect.
    /// </summary>
    public static async Task WaitForUrlAsync(IPage page, Func<string, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (!match(page.Url))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the page stayed at {page.Url}");
            await Task.Delay(50);
        }
    }

    /// <summary>axe-core's WCAG 2.1 A/AA rules on the page as it is now: no serious or critical violation.</summary>
    public static async Task AssertAccessibleAsync(IPage page)
    {
        var result = await page.RunAxe(new AxeRunOptions
        {
            RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
        });
        var bad = result.Violations.Where(v => v.Impact is "serious" or "critical").ToList();
        Assert.True(bad.Count == 0, $"{page.Url}: " + string.Join("; ", bad.Select(v =>
            $"{v.Id} ({v.Impact}): {v.Help} at {string.Join(", ", v.Nodes.Select(n => string.Join(" ", n.Target)))}")));
    }

    /// <summary>Writes a screenshot of the page into docs/ui/, where docs/ui.md shows it, so the pictures stay current.</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        var dir = Path.Combine(OpenApiTests.RepositoryRoot(), "docs", "ui");
        Directory.CreateDirectory(dir);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(dir, name + ".png"), FullPage = true, Animations = ScreenshotAnimations.Disabled });
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserTests : ICollectionFixture<Browser>
{
    /// <summary>The browser tests run one after another: one Chromium at a time on a small machine.</summary>
    public const string Name = "Browser";
}
