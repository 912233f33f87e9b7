using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using KubeSim;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The clusters pages: the registry, one cluster's resources, and actions confirmed after a server-side dry run.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiClustersTests(Browser browser)
{
    private static int Replicas(KubeSimServer sim, string resource, string name) =>
        int.Parse(sim.Store.Get("apps/v1", resource, "prod", name)?["spec"]?["replicas"]?.ToJsonString() ?? "-1", System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<List<JsonElement>> AuditAsync(OpsgateServer server, string query)
    {
        var page = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?{query}&limit=100");
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    /// <summary>Posts a console form with this session's antiforgery token (taken from the sign-out form), as a forged submission would.</summary>
    private static async Task<IAPIResponse> PostFormAsync(IBrowserContext context, IPage page, string url, params (string Name, string Value)[] fields)
    {
        var token = await page.Locator("input[name='__RequestVerificationToken']").First.InputValueAsync();
        var form = context.APIRequest.CreateFormData().Set("__RequestVerificationToken", token);
        foreach (var (name, value) in fields)
            form.Set(name, value);
        return await context.APIRequest.PostAsync(url, new APIRequestContextOptions { Form = form, MaxRedirects = 0 });
    }

    [Fact]
    public async Task A_scale_from_the_cluster_page_shows_the_dry_run_changes_nothing_and_confirm_scales_it()
    {
        await using var sim = await SimCluster.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await SimCluster.RegisterAsync(server, sim, "kind-prod", ["prod", "staging"]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        await sim.Store.WaitUntilAsync(s => s.Get("apps/v1", "deployments", "prod", "web")?["status"]?["readyReplicas"]?.ToJsonString() == "2", TimeSpan.FromSeconds(10));

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, operatorKey, "/clusters");
        var row = page.Locator("tr[data-cluster='kind-prod']");
        await Assertions.Expect(row.Locator(".status")).ToHaveTextAsync("connected");
        await Assertions.Expect(row.GetByRole(AriaRole.Cell, new() { Name = "prod, staging" })).ToBeVisibleAsync();
        await Assertions.Expect(row).ToContainTextAsync("none"); // no execution yet
        await Browser.AssertAccessibleAsync(page);

        await row.GetByRole(AriaRole.Link, new() { Name = "kind-prod" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/clusters/kind-prod", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#f-namespace")).ToHaveValueAsync("prod");
        var web = page.Locator("tr[data-resource='deployment/web']");
        await Assertions.Expect(web.Locator("[data-replicas]")).ToHaveAttributeAsync("data-replicas", "2");
        await Assertions.Expect(page.Locator("tr[data-resource='statefulset/postgres']")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#pod-list tr[data-resource^='pod/web-']")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("tr[data-resource='persistentvolumeclaim/data-postgres-0']")).ToBeVisibleAsync();
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "cluster");

        await web.GetByLabel("Replicas for web").FillAsync("5");
        await web.GetByRole(AriaRole.Button, new() { Name = "Scale deployment web" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("/clusters/kind-prod/confirm", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#dry-run-answer")).ToContainTextAsync("\"dry_run\": true");
        await Assertions.Expect(page.Locator("#dry-run-answer")).ToContainTextAsync("\"replicas\": 5");
        await Assertions.Expect(page.Locator("#changes [data-now]")).ToHaveTextAsync("2 (2 ready)");
        await Assertions.Expect(page.Locator("#changes [data-after]")).ToHaveTextAsync("5");
        Assert.Equal(2, Replicas(sim, "deployments", "web")); // the dry run changed nothing
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "cluster-confirm");

        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/clusters/kind-prod?namespace=prod", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#done")).ToHaveTextAsync("Scaled deployment web to 5 replicas.");
        await Assertions.Expect(web.Locator("[data-replicas]")).ToHaveAttributeAsync("data-replicas", "5");
        Assert.Equal(5, Replicas(sim, "deployments", "web"));
        await page.ReloadAsync(new PageReloadOptions { WaitUntil = WaitUntilState.Commit });
        await Assertions.Expect(web).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#done")).ToHaveCountAsync(0); // the notice is shown once

        // Audited as the API audits its scale route: the dry run, then the scale, each with the body.
        var entries = await AuditAsync(server, "actor=olga&action=k8s.scale");
        Assert.Equal([(false, "success"), (true, "success")], entries.Select(e => (e.GetProperty("dry_run").GetBoolean(), e.GetProperty("status").GetString())));
        Assert.All(entries, e =>
        {
            Assert.Equal("deployment", e.GetProperty("resource_kind").GetString());
            Assert.Equal("prod", e.GetProperty("namespace").GetString());
            Assert.Equal("web", e.GetProperty("resource_name").GetString());
            Assert.Equal("kind-prod", e.GetProperty("cluster").GetString());
            Assert.Equal(5, e.GetProperty("request_body").GetProperty("replicas").GetInt32());
        });

        // The registry now shows it as the cluster's latest execution.
        await page.GotoAsync("/clusters");
        await Assertions.Expect(row).ToContainTextAsync("k8s.scale prod/web");
        await Assertions.Expect(row).ToContainTextAsync("by olga");
        await Browser.ScreenshotAsync(page, "clusters");
    }

    [Fact]
    public async Task A_viewer_sees_no_actions_and_a_forged_one_is_refused_and_audited_as_denied()
    {
        await using var sim = await SimCluster.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await SimCluster.RegisterAsync(server, sim, "kind-prod", ["prod", "staging"]);
        var (_, viewerKey) = await server.CreateKeyAsync("vic", "viewer");
        var (_, scopedKey) = await server.CreateKeyAsync("sam", "operator", ["staging", "elsewhere"]);

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, viewerKey, "/clusters/kind-prod");
        await Assertions.Expect(page.Locator("tr[data-resource='deployment/web']")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Columnheader, new() { Name = "Actions" })).ToHaveCountAsync(0);
        foreach (var verb in new[] { "Scale", "Restart", "Delete" })
            await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = verb })).ToHaveCountAsync(0);
        await Browser.AssertAccessibleAsync(page);

        foreach (var handler in new[] { "Preview", "Apply" })
        {
            var response = await PostFormAsync(context, page, $"/clusters/kind-prod/confirm?handler={handler}",
                ("namespace", "prod"), ("op", "scale"), ("kind", "deployment"), ("resource", "web"), ("replicas", "7"));
            Assert.Equal((int)HttpStatusCode.Forbidden, response.Status);
            Assert.Contains("this requires role operator or higher; vic has role viewer", await response.TextAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(2, Replicas(sim, "deployments", "web"));
        var denied = await AuditAsync(server, "actor=vic&action=k8s.scale");
        Assert.Equal([(false, "denied", 403), (true, "denied", 403)],
            denied.Select(e => (e.GetProperty("dry_run").GetBoolean(), e.GetProperty("status").GetString(), e.GetProperty("http_status").GetInt32())));
        Assert.All(denied, e => Assert.Equal("prod/web", $"{e.GetProperty("namespace").GetString()}/{e.GetProperty("resource_name").GetString()}"));

        // An operator limited to staging is offered staging only, and is refused prod even when it forges the form.
        await using var scoped = await browser.ContextAsync(server);
        var sams = await Browser.SignInAsync(scoped, scopedKey, "/clusters/kind-prod");
        await Assertions.Expect(sams.Locator("#f-namespace option")).ToHaveTextAsync(["staging"]);
        await Assertions.Expect(sams.Locator("#deployment-list")).ToContainTextAsync("None.");
        var forbidden = await PostFormAsync(scoped, sams, "/clusters/kind-prod/confirm?handler=Preview",
            ("namespace", "prod"), ("op", "restart"), ("kind", "deployment"), ("resource", "web"));
        Assert.Equal((int)HttpStatusCode.Forbidden, forbidden.Status);
        Assert.Contains("namespace &#x27;prod&#x27; is not in sam&#x27;s namespace allowlist", await forbidden.TextAsync(), StringComparison.Ordinal);
        var restart = Assert.Single(await AuditAsync(server, "actor=sam&action=k8s.restart"));
        Assert.Equal("denied", restart.GetProperty("status").GetString());
        Assert.True(restart.GetProperty("dry_run").GetBoolean());
        await sams.GotoAsync("/clusters/kind-prod?namespace=prod");
        await Assertions.Expect(sams.Locator("#notice")).ToContainTextAsync("is not in sam's namespace allowlist");
    }

    [Fact]
    public async Task A_pod_is_deleted_after_its_confirmation_and_cluster_errors_show_as_notices()
    {
        await using var sim = await SimCluster.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await SimCluster.RegisterAsync(server, sim, "kind-prod", ["prod"]);
        await sim.Store.WaitUntilAsync(s => s.List("v1", "pods", "prod", "app=web").Count == 2, TimeSpan.FromSeconds(10));
        var pod = sim.Store.List("v1", "pods", "prod", "app=web").Select(p => p["metadata"]!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal).First();

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey, "/clusters/kind-prod");
        await page.Locator($"tr[data-resource='pod/{pod}']").GetByRole(AriaRole.Button, new() { Name = $"Delete pod {pod}" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.Contains("/confirm", StringComparison.Ordinal));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync($"Delete pod {pod}?");
        await Assertions.Expect(page.Locator("#dry-run-answer")).ToContainTextAsync("\"action\": \"delete\"");
        await Assertions.Expect(page.Locator("#changes [data-after]")).ToHaveTextAsync("deleted");
        Assert.NotNull(sim.Store.Get("v1", "pods", "prod", pod));
        await Browser.AssertAccessibleAsync(page);

        // Cancel changes nothing; the same action again, confirmed, deletes it.
        await page.GetByRole(AriaRole.Link, new() { Name = "Cancel" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/clusters/kind-prod?namespace=prod", StringComparison.Ordinal));
        await page.Locator($"tr[data-resource='pod/{pod}']").GetByRole(AriaRole.Button, new() { Name = $"Delete pod {pod}" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm" }).ClickAsync();
        await Assertions.Expect(page.Locator("#done")).ToHaveTextAsync($"Deleted pod {pod}.");
        await sim.Store.WaitUntilAsync(s => s.Get("v1", "pods", "prod", pod) is null, TimeSpan.FromSeconds(10));
        var entries = await AuditAsync(server, "action=k8s.delete");
        Assert.Equal([(false, "success"), (true, "success"), (true, "success")], entries.Select(e => (e.GetProperty("dry_run").GetBoolean(), e.GetProperty("status").GetString())));
        Assert.All(entries, e => Assert.Equal(pod, e.GetProperty("resource_name").GetString()));

        // The cluster's refusals are notices with the API's status, never a 500.
        var missing = await PostFormAsync(context, page, "/clusters/kind-prod/confirm?handler=Preview",
            ("namespace", "prod"), ("op", "delete"), ("kind", "pod"), ("resource", "nope"));
        Assert.Equal((int)HttpStatusCode.NotFound, missing.Status);
        Assert.Contains("pods &quot;nope&quot; not found", await missing.TextAsync(), StringComparison.Ordinal);
        var tooMany = await PostFormAsync(context, page, "/clusters/kind-prod/confirm?handler=Preview",
            ("namespace", "prod"), ("op", "scale"), ("kind", "deployment"), ("resource", "web"), ("replicas", "-1"));
        Assert.Equal((int)HttpStatusCode.BadRequest, tooMany.Status);
        Assert.Contains("replicas: must be between 0 and", await tooMany.TextAsync(), StringComparison.Ordinal);
        var response = await page.GotoAsync("/clusters/kind-prod?namespace=kube-system");
        Assert.Equal((int)HttpStatusCode.Forbidden, response!.Status);
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("namespace 'kube-system' is not in the allowlist of cluster 'kind-prod'");
        response = await page.GotoAsync("/clusters/nowhere");
        Assert.Equal((int)HttpStatusCode.NotFound, response!.Status);
        await Assertions.Expect(page.Locator("#notice")).ToHaveTextAsync("cluster 'nowhere' is not registered");

        var gone = await SimCluster.StartAsync();
        await SimCluster.RegisterAsync(server, gone, "gone", ["prod"]);
        await gone.DisposeAsync();
        response = await page.GotoAsync("/clusters/gone");
        Assert.Equal((int)HttpStatusCode.BadGateway, response!.Status);
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("cluster 'gone'");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("is unreachable");
        await Assertions.Expect(page.Locator("#deployment-list")).ToHaveCountAsync(0);
    }
}
