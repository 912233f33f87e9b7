using Dapper;
using System.Net;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The job page: the timeline and the event log follow the job live; the buttons are the ones the user may press.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiJobPageTests(Browser browser)
{
    /// <summary>pg-rebuild as shipped, but waiting for an approval first, so the page is open before anything runs.</summary>
    private static async Task<TempDir> GatedRunbooksAsync()
    {
        var dir = new TempDir();
        var builtIn = await File.ReadAllTextAsync(Path.Combine(OpenApiTests.RepositoryRoot(), "src", "Opsgate.Server", "Engine", "Runbooks", "BuiltIn", "pg-rebuild.yaml"));
        Assert.Contains("options:\n  timeout: 30m", builtIn, StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "pg-rebuild.yaml"), builtIn.Replace("options:\n  timeout: 30m", "options:\n  requires_approval: true\n  timeout: 30m", StringComparison.Ordinal));
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "gated.yaml"), """
            name: gated
            description: Does nothing once approved.
            options: {requires_approval: true}
            steps:
              - {name: noop, kind: noop, with: {message: done}}
            """);
        return dir;
    }

    [Fact]
    public async Task A_pg_rebuild_approved_by_a_second_user_completes_live_on_the_submitters_open_page()
    {
        await using var sim = await SimCluster.StartAsync();
        using var runbooks = await GatedRunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        await SimCluster.RegisterAsync(server, sim, "default", ["prod"]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        var (_, approverKey) = await server.CreateKeyAsync("abe", "approver");
        await sim.Store.WaitUntilAsync(s => s.Get("v1", "pods", "prod", "postgres-0")?["status"]?["phase"]?.GetValue<string>() == "Running", TimeSpan.FromSeconds(10));
        var id = await TestJobs.SubmitAsync(server.Client(operatorKey), "pg-rebuild", new { @namespace = "prod", statefulset = "postgres", ordinal = 0 });

        await using var submitter = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(submitter, operatorKey, $"/jobs/{id}");
        var navigations = 0;
        page.FrameNavigated += (_, frame) => navigations += frame == page.MainFrame ? 1 : 0;
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "waiting_approval");
        await Assertions.Expect(page.Locator("#event-log li[data-type='job.created']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#live-state")).ToHaveTextAsync("Live");
        // Its own job: the submitter may cancel it but not approve it.
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Cancel" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Approve" })).ToHaveCountAsync(0);
        await Browser.AssertAccessibleAsync(page);

        await using var approver = await browser.ContextAsync(server);
        var decide = await Browser.SignInAsync(approver, approverKey, $"/jobs/{id}");
        await decide.GetByLabel("Comment").First.FillAsync("replica 0 is corrupt, go");
        await decide.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Assertions.Expect(decide.Locator("dd", new() { HasText = "abe: replica 0 is corrupt, go" })).ToBeVisibleAsync();

        // The submitter's page, never reloaded, follows the run to its end.
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "succeeded", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#timeline li[data-status='succeeded']")).ToHaveCountAsync(5);
        await Assertions.Expect(page.Locator("#event-log li[data-type='job.finished']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#live-state")).ToHaveTextAsync("Finished");
        Assert.Equal(0, navigations);
        var seqs = await page.Locator("#event-log li").EvaluateAllAsync<long[]>("items => items.map(i => Number(i.dataset.seq))");
        Assert.Equal(Enumerable.Range(1, seqs.Length).Select(i => (long)i), seqs); // every event once, in order, none missing
        var stream = await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/events");
        Assert.Equal(stream.Split("\nid: ").Length, seqs.Length); // as many as a plain SSE client gets
        Assert.Equal("succeeded", (await TestJobs.GetAsync(server.Admin, id)).Status());
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Cancel" })).ToHaveCountAsync(0);
        await Browser.ScreenshotAsync(page, "job");

        var audit = await server.Admin.GetStringAsync($"/api/v1/audit?limit=200");
        Assert.Contains("\"action\":\"job.approve\"", audit, StringComparison.Ordinal);

        // The other pages, now that there is something on them.
        await decide.GotoAsync("/");
        await Assertions.Expect(decide.Locator("dd[data-count='succeeded']")).ToHaveTextAsync("1");
        await Assertions.Expect(decide.GetByRole(AriaRole.Cell, new() { Name = "default" })).ToBeVisibleAsync();
        await Assertions.Expect(decide.GetByRole(AriaRole.Link, new() { Name = "Approvals" })).ToBeVisibleAsync();
        await Browser.AssertAccessibleAsync(decide);
        await Browser.ScreenshotAsync(decide, "dashboard");
        await decide.SetViewportSizeAsync(390, 844);
        await decide.GotoAsync($"/jobs/{id}");
        await Assertions.Expect(decide.Locator("#live-state")).ToHaveTextAsync("Finished");
        await Browser.AssertAccessibleAsync(decide);
        await Browser.ScreenshotAsync(decide, "job-phone");
    }

    [Fact]
    public async Task A_dropped_event_stream_resumes_after_the_last_event_shown_with_none_missed_or_repeated()
    {
        using var runbooks = await GatedRunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var (_, approverKey) = await server.CreateKeyAsync("abe", "approver");
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");
        long last;
        await using (var connection = await server.OpenDatabaseAsync())
            last = await connection.ExecuteScalarAsync<long>("SELECT last_seq FROM jobs WHERE id = @id", new { id });

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey);
        var resumedFrom = new List<string?>();
        // The page opens with the events so far; its first connection gets two more and breaks off. The page must
        // reconnect and ask only for the rest.
        await page.RouteAsync($"**/api/v1/jobs/{id}/events", async route =>
        {
            resumedFrom.Add(route.Request.Headers.GetValueOrDefault("last-event-id"));
            if (resumedFrom.Count > 1)
            {
                await route.ContinueAsync();
                return;
            }
            await server.Client(approverKey).PostAsync($"/api/v1/jobs/{id}/approve", null);
            await TestJobs.WaitAsync(server.Admin, id);
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/jobs/{id}/events");
            request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var rest = await (await server.Admin.SendAsync(request)).Content.ReadAsStringAsync();
            var frames = rest.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/event-stream", Body = frames[0] + "\n\n" + frames[1] + "\n\n" });
        });
        await page.GotoAsync($"/jobs/{id}");
        await Assertions.Expect(page.Locator("#live-state")).ToHaveTextAsync("Finished");
        Assert.Equal([$"{last}", $"{last + 2}"], resumedFrom);
        var seqs = await page.Locator("#event-log li").EvaluateAllAsync<long[]>("items => items.map(i => Number(i.dataset.seq))");
        var all = (await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/events")).Split("\nid: ").Length;
        Assert.True(all > last + 2, $"the job made {all} events, more than the {last} shown at first and the 2 sent before the break");
        Assert.Equal(Enumerable.Range(1, all).Select(i => (long)i), seqs);
    }

    [Fact]
    public async Task A_job_with_a_long_event_log_opens_with_the_latest_events_and_pages_back_through_the_rest()
    {
        using var runbooks = await GatedRunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");
        // 1,200 more events in the job's log, written as the engine writes them (as a long Ansible run would make).
        long total;
        await using (var connection = await server.OpenDatabaseAsync())
        {
            var first = await connection.ExecuteScalarAsync<long>("SELECT last_seq FROM jobs WHERE id = @id", new { id }) + 1;
            var rows = Enumerable.Range(0, 1200).Select(i => new { id, seq = first + i, ts = DateTime.UtcNow, data = $"{{\"line\":{i}}}" });
            await using var tx = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync("INSERT INTO job_events (job_id, seq, ts, type, step_order, data) VALUES (@id, @seq, @ts, 'test.line', NULL, @data)", rows, tx);
            total = first + 1199;
            await connection.ExecuteAsync("UPDATE jobs SET last_seq = @total WHERE id = @id", new { total, id }, tx);
            await tx.CommitAsync();
        }

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, OpsgateServer.AdminKey, $"/jobs/{id}");
        await Assertions.Expect(page.Locator("#live-state")).ToHaveTextAsync("Live");
        var shown = await page.Locator("#event-log li").EvaluateAllAsync<long[]>("items => items.map(i => Number(i.dataset.seq))");
        Assert.Equal(Enumerable.Range((int)total - 199, 200).Select(i => (long)i), shown);
        await Assertions.Expect(page.Locator("#event-log li").Last).ToContainTextAsync("test.line {\"line\":1199}");

        // Approved now: the new events follow the 200 shown, none repeated.
        var (_, approverKey) = await server.CreateKeyAsync("abe", "approver");
        await server.Client(approverKey).PostAsync($"/api/v1/jobs/{id}/approve", null);
        await Assertions.Expect(page.Locator("#live-state")).ToHaveTextAsync("Finished");
        var after = await page.Locator("#event-log li").EvaluateAllAsync<long[]>("items => items.map(i => Number(i.dataset.seq))");
        Assert.Equal(Enumerable.Range((int)total - 199, after.Length).Select(i => (long)i), after);
        Assert.True(after.Length > 200);

        // Earlier events, a page at a time, newest page first.
        await page.GetByRole(AriaRole.Link, new() { Name = "Earlier events" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Events #{total - 699} to #{total - 200}" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#event-page li")).ToHaveCountAsync(500);
        await Browser.AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Link, new() { Name = "Older events" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Older events" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Events #1 to #{total - 1200}" })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Older events" })).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Link, new() { Name = "Newer events" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Events #{total - 1199} to #{total - 700}" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task A_viewer_is_not_offered_an_action_and_is_refused_one_sent_anyway()
    {
        using var runbooks = await GatedRunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var (_, viewerKey) = await server.CreateKeyAsync("vic", "viewer");
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, viewerKey, $"/jobs/{id}");
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "waiting_approval");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Actions" })).ToHaveCountAsync(0);
        foreach (var action in new[] { "Cancel", "Approve", "Reject", "Retry" })
            await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = action })).ToHaveCountAsync(0);
        // Approvers' entries are not in a viewer's menu either.
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Approvals" })).ToHaveCountAsync(0);

        // The form posted anyway, with a valid token of this session (the sign-out form's): refused, audited, nothing changed.
        var token = await page.Locator("input[name='__RequestVerificationToken']").First.InputValueAsync();
        foreach (var handler in new[] { "Cancel", "Approve" })
        {
            var response = await context.APIRequest.PostAsync($"/jobs/{id}?handler={handler}", new APIRequestContextOptions
            {
                Form = context.APIRequest.CreateFormData().Set("__RequestVerificationToken", token),
                MaxRedirects = 0,
            });
            Assert.Equal((int)HttpStatusCode.Forbidden, response.Status);
            Assert.Contains("requires role", await response.TextAsync(), StringComparison.Ordinal);
        }
        // Without the token the form is refused before anything is checked.
        var forged = await context.APIRequest.PostAsync($"/jobs/{id}?handler=Cancel", new APIRequestContextOptions { MaxRedirects = 0 });
        Assert.Equal((int)HttpStatusCode.BadRequest, forged.Status);

        Assert.Equal("waiting_approval", (await TestJobs.GetAsync(server.Admin, id)).Status());
        var audit = await server.Admin.GetStringAsync($"/api/v1/audit?limit=200");
        Assert.Contains("\"action\":\"job.cancel\"", audit, StringComparison.Ordinal);
        Assert.Contains("\"status\":\"denied\"", audit, StringComparison.Ordinal);
    }
}
