using System.Net;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>Signing in to the console with an API key, signing out, and what the session cookie may and may not do.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiSignInTests(Browser browser)
{
    [Fact]
    public async Task A_key_signs_in_and_sign_out_ends_the_session_and_the_browser_never_keeps_the_key()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (_, key) = await server.CreateKeyAsync("dana", "operator");
        await using var context = await browser.ContextAsync(server);
        var page = await context.NewPageAsync();

        // Not signed in: the page asked for leads to the sign-in form, and back to it afterwards.
        await page.GotoAsync("/jobs");
        Assert.EndsWith("/signin?returnUrl=%2Fjobs", page.Url, StringComparison.Ordinal);
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "signin");

        await page.GetByLabel("API key").FillAsync("og_not-a-key-that-exists-0000000");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("the API key is not valid");

        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/jobs", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator(".who")).ToContainTextAsync("dana · operator");

        var cookie = (await context.CookiesAsync()).Single(c => c.Name == "opsgate_session");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.False(cookie.Secure); // plain HTTP here; Secure is set when the request comes over HTTPS
        Assert.Equal(-1, cookie.Expires); // a browser-session cookie; the ticket inside expires after 8 h
        Assert.DoesNotContain(key, cookie.Value, StringComparison.Ordinal);
        Assert.All(await context.CookiesAsync(), c => Assert.DoesNotContain(key, c.Value, StringComparison.Ordinal));
        var storage = await page.EvaluateAsync<string>("() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)");
        Assert.Equal("{}{}", storage);
        Assert.DoesNotContain(key, await page.ContentAsync(), StringComparison.Ordinal);

        // The API's own key auth is unchanged next to it.
        Assert.Equal(HttpStatusCode.OK, (await server.Client(key).GetAsync("/api/v1/jobs")).StatusCode);

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("/signin", StringComparison.Ordinal));
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("signed out");
        Assert.DoesNotContain(await context.CookiesAsync(), c => c.Name == "opsgate_session");
        await page.GotoAsync("/");
        Assert.EndsWith("/signin", page.Url, StringComparison.Ordinal);

        var audit = await server.Admin.GetStringAsync("/api/v1/audit?limit=100");
        Assert.Contains("\"session.create\"", audit, StringComparison.Ordinal);
        Assert.Contains("\"session.delete\"", audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoking_the_key_ends_its_sessions_at_the_next_request()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (id, key) = await server.CreateKeyAsync("erin", "viewer");
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, key);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Dashboard" })).ToBeVisibleAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync($"/api/v1/apikeys/{id}")).StatusCode);
        await page.ReloadAsync(new PageReloadOptions { WaitUntil = WaitUntilState.Commit });
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/signin", StringComparison.Ordinal));
        await Assertions.Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task Pages_deny_framing_and_inline_script_and_forms_need_their_antiforgery_token()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
        {
            BaseAddress = server.BaseAddress,
        };
        var signIn = await http.GetAsync("/signin");
        var csp = signIn.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        Assert.Equal("DENY", signIn.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("nosniff", signIn.Headers.GetValues("X-Content-Type-Options").Single());
        var html = await signIn.Content.ReadAsStringAsync();
        Assert.Contains("name=\"__RequestVerificationToken\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);

        // The right key without the form's token: refused before the key is looked at.
        var forged = await http.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["key"] = OpsgateServer.AdminKey }));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.DoesNotContain(forged.Headers, h => h.Key == "Set-Cookie" && h.Value.Any(v => v.StartsWith("opsgate_session", StringComparison.Ordinal)));

        // With the token: a session, which opens a job's event stream but no state-changing API route.
        var token = System.Text.RegularExpressions.Regex.Match(html, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        var signedIn = await http.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["key"] = OpsgateServer.AdminKey, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.SeeOther, signedIn.StatusCode);
        var job = await TestJobs.SubmitAsync(server.Admin, "noop", new { message = "hello" });
        await TestJobs.WaitAsync(server.Admin, job);
        var events = await http.GetStringAsync($"/api/v1/jobs/{job}/events");
        Assert.Contains("event: job.finished", events, StringComparison.Ordinal);
        var submit = await http.PostAsync("/api/v1/jobs", new StringContent("{\"type\":\"noop\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, submit.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/jobs")).StatusCode);
    }

    [Fact]
    public async Task A_session_made_on_one_replica_is_accepted_by_another_on_the_same_database()
    {
        await using var postgres = await PostgresDatabase.CreateAsync();
        string[] args = ["--Database:Provider=postgres", $"--Database:ConnectionString={postgres.ConnectionString}",
            $"--Secrets:Key={Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))}"];
        await using var a = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        await using var b = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        var cookies = new CookieContainer();
        using var toA = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false }) { BaseAddress = a.BaseAddress };
        using var toB = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false }) { BaseAddress = b.BaseAddress };
        // B has made its own key already (its sign-in form carries a token) before A makes the session.
        Assert.Equal(HttpStatusCode.OK, (await toB.GetAsync("/signin")).StatusCode);

        var form = await toA.GetStringAsync("/signin");
        var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        var signedIn = await toA.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["key"] = OpsgateServer.AdminKey, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.SeeOther, signedIn.StatusCode);
        // Both servers listen on 127.0.0.1: the browser's cookie for one is sent to the other, as behind a load balancer.
        var session = cookies.GetCookies(a.BaseAddress)["opsgate_session"]!;
        cookies.Add(b.BaseAddress, new System.Net.Cookie(session.Name, session.Value, "/", b.BaseAddress.Host));

        var page = await toB.GetAsync("/jobs");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<strong>bootstrap-admin</strong> · admin", System.Net.WebUtility.HtmlDecode(await page.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        // And B's forms are accepted by A: the antiforgery tokens use the same key ring.
        var jobsOnB = await toB.GetStringAsync("/jobs");
        var tokenB = System.Text.RegularExpressions.Regex.Match(jobsOnB, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        var signOut = await toA.PostAsync("/signin?handler=SignOut", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = tokenB }));
        Assert.Equal(HttpStatusCode.SeeOther, signOut.StatusCode);
    }
}
