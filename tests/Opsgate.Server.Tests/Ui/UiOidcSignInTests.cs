using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>Signing in to the console through the OIDC provider (authorization code flow with PKCE).</summary>
[Collection(BrowserTests.Name)]
public sealed class UiOidcSignInTests(Browser browser)
{
    private const string ClientId = "opsgate-console";

    [Fact]
    public async Task A_keycloak_user_signs_in_with_pkce_and_gets_the_role_the_provider_gives()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        idp.Users["olga"] = ["offline_access", "operator"];
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs($"--Auth:Oidc:ClientId={ClientId}"));
        await using var context = await browser.ContextAsync(server);
        var page = await context.NewPageAsync();

        await page.GotoAsync("/jobs");
        await page.GetByRole(AriaRole.Link, new() { Name = "Sign in with OIDC" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.StartsWith(idp.Issuer, StringComparison.Ordinal));
        await page.GetByLabel("Username").FillAsync("olga");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();

        // Back where the user was going, signed in as the provider's user with the provider's role.
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/jobs", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator(".who")).ToContainTextAsync("olga · operator");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Jobs" })).ToBeVisibleAsync();

        // The console asked for a code with an S256 PKCE challenge, state and nonce, and sent no client secret.
        var asked = Assert.Single(idp.AuthorizationRequests);
        Assert.Equal("code", asked["response_type"]);
        Assert.Equal(ClientId, asked["client_id"]);
        Assert.Equal("S256", asked["code_challenge_method"]);
        Assert.Equal(43, asked["code_challenge"].Length);
        Assert.False(string.IsNullOrEmpty(asked["state"]));
        Assert.False(string.IsNullOrEmpty(asked["nonce"]));
        Assert.Equal(server.BaseAddress.ToString().TrimEnd('/') + "/signin/oidc", asked["redirect_uri"]);
        Assert.Empty(idp.RefusedTokenRequests);

        // No token in the browser: the session cookie is the only thing kept, HttpOnly.
        var cookies = await context.CookiesAsync();
        var session = cookies.Single(c => c.Name == "opsgate_session");
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);
        Assert.DoesNotContain(cookies, c => c.Value.StartsWith("eyJ", StringComparison.Ordinal));
        Assert.Equal("{}{}", await page.EvaluateAsync<string>("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)"));

        // Audited like a key sign-in, naming the provider's user.
        var audit = await server.Admin.GetStringAsync("/api/v1/audit?action=session.create&limit=10");
        Assert.Contains("\"actor\":\"olga\"", audit, StringComparison.Ordinal);
        Assert.Contains("\"principal_id\":\"oidc:user-olga\"", audit, StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("/signin", StringComparison.Ordinal));
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("signed out");
        await page.GotoAsync("/");
        Assert.Contains("/signin", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_without_an_opsgate_role_or_refused_by_the_provider_is_told_why_and_not_signed_in()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        idp.Users["nora"] = ["offline_access", "uma_authorization"];
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs($"--Auth:Oidc:ClientId={ClientId}"));
        await using var context = await browser.ContextAsync(server);
        var page = await context.NewPageAsync();

        await page.GotoAsync("/signin");
        await page.GetByRole(AriaRole.Link, new() { Name = "Sign in with OIDC" }).ClickAsync();
        await page.GetByLabel("Username").FillAsync("nora");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("nora has no Opsgate role: the token's 'realm_access.roles' claim holds none that maps to one");
        Assert.DoesNotContain(await context.CookiesAsync(), c => c.Name == "opsgate_session");
        await Browser.AssertAccessibleAsync(page);

        // The provider refuses (an unknown user): the console says so and stays signed out.
        await page.GetByRole(AriaRole.Link, new() { Name = "Sign in with OIDC" }).ClickAsync();
        await page.GetByLabel("Username").FillAsync("mallory");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("OIDC sign-in failed");
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("access_denied");
        Assert.DoesNotContain(await context.CookiesAsync(), c => c.Name == "opsgate_session");

        // Only this server's own words: a crafted link cannot write on the sign-in form.
        await page.GotoAsync("/signin?oidcError=" + Uri.EscapeDataString("your account is locked, call +1 555 0100"));
        await Assertions.Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToHaveCountAsync(0);
        Assert.DoesNotContain("555 0100", await page.ContentAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_client_id_the_console_offers_keys_only()
    {
        await using var idp = await FakeOidcProvider.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, idp.OpsgateArgs());
        await using var context = await browser.ContextAsync(server);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/signin");
        await Assertions.Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Sign in with OIDC" })).ToHaveCountAsync(0);
        var response = await page.GotoAsync("/signin?handler=Oidc");
        Assert.Equal(404, response!.Status);
    }
}
