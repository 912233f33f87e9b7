using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The approvals queue: what waits for the signed-in user's decision, decided there by someone else than the submitter.</summary>
[Collection(BrowserTests.Name)]
public sealed partial class UiApprovalsTests(Browser browser)
{
    [GeneratedRegex("/jobs/[0-9a-z]{26}$")]
    private static partial Regex JobPage();

    [Fact]
    public async Task A_job_launched_by_an_operator_is_approved_by_a_second_user_from_the_queue_and_runs()
    {
        await using var sim = await SimCluster.StartAsync();
        using var runbooks = await UiLaunchTests.RunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        await SimCluster.RegisterAsync(server, sim, "default", ["prod", "staging"]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        var (_, approverKey) = await server.CreateKeyAsync("abe", "approver");
        var (_, stagingKey) = await server.CreateKeyAsync("sam", "approver", ["staging"]);

        // A launches from the form; the job waits, and A is not offered to approve it.
        await using var submitter = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(submitter, operatorKey, "/runbooks/scale-web/launch");
        await page.GetByLabel("namespace").FillAsync("prod");
        await page.GetByLabel("replicas").FillAsync("3");
        await page.Locator("select#p-urgency").SelectOptionAsync("high");
        await page.GetByLabel("ticket_token").FillAsync("tkt-4711-secret");
        await page.GetByRole(AriaRole.Button, new() { Name = "Launch" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => JobPage().IsMatch(url));
        var id = page.Url[^26..];
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "waiting_approval");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Cancel" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Approve" })).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Approvals" })).ToHaveCountAsync(0);
        var refused = await page.GotoAsync("/approvals");
        Assert.Equal((int)HttpStatusCode.Forbidden, refused!.Status);

        // B's own job waits too, but not for B; A's second one is for B to reject.
        var own = await TestJobs.SubmitAsync(server.Client(approverKey), "scale-web", new { @namespace = "prod", replicas = 1 });
        var second = await TestJobs.SubmitAsync(server.Client(operatorKey), "scale-web", new { @namespace = "prod", replicas = 9 });

        await using var approver = await browser.ContextAsync(server);
        var queue = await Browser.SignInAsync(approver, approverKey, "/");
        await queue.GetByRole(AriaRole.Link, new() { Name = "Approvals" }).ClickAsync();
        await Browser.WaitForUrlAsync(queue, url => url.EndsWith("/approvals", StringComparison.Ordinal));
        var item = queue.Locator($"#approvals li[data-job='{id}']");
        await Assertions.Expect(item).ToContainTextAsync("olga");
        await Assertions.Expect(item.Locator("[data-param='namespace']")).ToHaveTextAsync("prod");
        await Assertions.Expect(item.Locator("[data-param='replicas']")).ToHaveTextAsync("3");
        await Assertions.Expect(item.Locator("[data-param='urgency']")).ToHaveTextAsync("high");
        await Assertions.Expect(item.Locator("[data-param='ticket_token']")).ToHaveTextAsync("[REDACTED]");
        await Assertions.Expect(queue.Locator($"#approvals li[data-job='{second}'] [data-param='ticket_token']")).ToHaveTextAsync("not given");
        await Assertions.Expect(queue.Locator("#approvals li")).ToHaveCountAsync(2);
        await Assertions.Expect(queue.Locator("#approvals li").First).ToHaveAttributeAsync("data-job", id); // oldest first
        await Assertions.Expect(queue.Locator($"#approvals li[data-job='{own}']")).ToHaveCountAsync(0);
        Assert.DoesNotContain("tkt-4711-secret", await queue.ContentAsync(), StringComparison.Ordinal);
        await Browser.AssertAccessibleAsync(queue);
        await Browser.ScreenshotAsync(queue, "approvals");
        await queue.SetViewportSizeAsync(390, 844); // a phone: the queue still reads and passes the checks
        await Browser.AssertAccessibleAsync(queue);
        await queue.SetViewportSizeAsync(1280, 900);

        // An approver limited to staging does not see a job acting in prod.
        await using var elsewhere = await browser.ContextAsync(server);
        var stagingQueue = await Browser.SignInAsync(elsewhere, stagingKey, "/approvals");
        await Assertions.Expect(stagingQueue.Locator("#no-approvals")).ToBeVisibleAsync();

        await item.GetByLabel("Comment").FillAsync("load test at noon, go");
        await item.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Browser.WaitForUrlAsync(queue, url => url.EndsWith($"/jobs/{id}", StringComparison.Ordinal));
        await Assertions.Expect(queue.Locator("dd", new() { HasText = "abe: load test at noon, go" })).ToBeVisibleAsync();
        await Assertions.Expect(queue.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "succeeded", new() { Timeout = 30_000 });
        Assert.Equal("3", sim.Store.Get("apps/v1", "deployments", "prod", "web")?["spec"]?["replicas"]?.ToJsonString());
        // A sees it finished too.
        await page.GotoAsync($"/jobs/{id}");
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "succeeded");

        await queue.GotoAsync("/approvals");
        var rest = queue.Locator($"#approvals li[data-job='{second}']");
        await rest.GetByLabel("Comment").FillAsync("not today");
        await rest.GetByRole(AriaRole.Button, new() { Name = "Reject" }).ClickAsync();
        await Browser.WaitForUrlAsync(queue, url => url.EndsWith($"/jobs/{second}", StringComparison.Ordinal));
        await Assertions.Expect(queue.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "cancelled");
        await queue.GotoAsync("/approvals");
        await Assertions.Expect(queue.Locator("#no-approvals")).ToBeVisibleAsync();
        Assert.Equal("3", sim.Store.Get("apps/v1", "deployments", "prod", "web")?["spec"]?["replicas"]?.ToJsonString());
        var approvals = await UiLaunchTests.AuditAsync(server, "job.approve");
        var approval = Assert.Single(approvals);
        Assert.Equal("abe", approval.GetProperty("actor").GetString());
        Assert.Equal(id, approval.GetProperty("job_id").GetString());
        Assert.Equal("success", approval.GetProperty("status").GetString());
        Assert.Equal(second, Assert.Single(await UiLaunchTests.AuditAsync(server, "job.reject")).GetProperty("job_id").GetString());
    }
}
