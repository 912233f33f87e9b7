using System.Diagnostics;
using System.Net;
using Dapper;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The jobs list: filters, keyset paging, and that a page stays fast with 100,000 jobs behind it.</summary>
[Collection(BrowserTests.Name)]
public sealed class UiJobsListTests(Browser browser, ITestOutputHelper output)
{
    [Fact]
    public async Task Filters_narrow_the_list_and_older_pages_continue_where_the_last_one_ended()
    {
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "gated.yaml"), """
            name: gated
            description: Does nothing once approved.
            options: {requires_approval: true}
            steps:
              - {name: noop, kind: noop, with: {message: done}}
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        var noops = new List<string>();
        for (var i = 0; i < 53; i++)
            noops.Add(await TestJobs.SubmitAsync(server.Admin, "noop", new { message = $"n{i}" }));
        var gated = new[] { await TestJobs.SubmitAsync(server.Client(operatorKey), "gated"), await TestJobs.SubmitAsync(server.Client(operatorKey), "gated") };
        await TestJobs.WaitAsync(server.Admin, noops[^1]);

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, operatorKey, "/jobs");
        var rows = page.Locator("#jobs tbody tr");
        await Assertions.Expect(rows).ToHaveCountAsync(50);
        var first = await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.job)");
        // Newest first: ids are time-ordered (two of one millisecond in random order), so the 50 largest ids.
        var all = noops.Concat(gated).OrderDescending(StringComparer.Ordinal).ToList();
        Assert.Equal(all.Take(50), first);
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "jobs");

        await page.GetByRole(AriaRole.Link, new() { Name = "Older jobs" }).ClickAsync();
        await Assertions.Expect(rows).ToHaveCountAsync(5);
        var second = await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.job)");
        Assert.Equal(all.Skip(50), second);
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Older jobs" })).ToHaveCountAsync(0);

        await page.GotoAsync("/jobs");
        await page.GetByLabel("Status").SelectOptionAsync("waiting_approval");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await Assertions.Expect(rows).ToHaveCountAsync(2);
        Assert.Contains("status=waiting_approval", page.Url, StringComparison.Ordinal);

        await page.GotoAsync("/jobs?type=noop&actor=olga");
        await Assertions.Expect(page.GetByText("No job matches.")).ToBeVisibleAsync();
        await page.GotoAsync("/jobs?type=noop&actor=bootstrap-admin&status=succeeded");
        await Assertions.Expect(rows).ToHaveCountAsync(50);
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        await page.GotoAsync($"/jobs?type=gated&from={today}&to={today}");
        await Assertions.Expect(rows).ToHaveCountAsync(2);
        await page.GotoAsync("/jobs?type=gated&to=2020-01-01");
        await Assertions.Expect(page.GetByText("No job matches.")).ToBeVisibleAsync();

        // A filter that makes no sense is said so, as a 400, not a 500 or an empty list.
        var bad = await page.GotoAsync("/jobs?namespace=Not_A_Namespace");
        Assert.Equal((int)HttpStatusCode.BadRequest, bad!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("Namespace: must be a DNS-1123 label");
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task With_100000_jobs_a_filtered_page_reads_an_index_and_answers_quickly(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        const int Total = 100_000;
        var start = DateTimeOffset.UtcNow.AddDays(-10);
        var jobs = Enumerable.Range(0, Total).Select(i => new SeedJob(
            Opsgate.Server.Engine.JobIds.New(start.AddSeconds(i * 8)), i % 3 == 0 ? "pg-rebuild" : "noop", i % 100 == 7 ? "failed" : "succeeded",
            $"user{i % 20}", start.AddSeconds(i * 8).UtcDateTime)).ToList();
        // Every 10th job acts in a namespace: one in ten of those in staging (1% of all), the rest in prod.
        var targets = jobs.Where((_, i) => i % 10 == 0).Select((j, i) => (j.Id, Namespace: i % 10 == 0 ? "staging" : "prod")).ToList();
        await using (var connection = await server.OpenDatabaseAsync())
        {
            await using var tx = await connection.BeginTransactionAsync();
            if (provider == Provider.Postgres)
            {
                await connection.ExecuteAsync(
                    "INSERT INTO jobs (id, type, status, params, actor, created_at, scoped) " +
                    "SELECT id, type, status, '{}', actor, created, true FROM unnest(@ids, @types, @statuses, @actors, @created) AS j (id, type, status, actor, created)",
                    new { ids = jobs.Select(j => j.Id).ToArray(), types = jobs.Select(j => j.Type).ToArray(), statuses = jobs.Select(j => j.Status).ToArray(),
                        actors = jobs.Select(j => j.Actor).ToArray(), created = jobs.Select(j => j.Created).ToArray() }, tx);
                await connection.ExecuteAsync(
                    "INSERT INTO job_targets (job_id, cluster, namespace) SELECT id, 'default', ns FROM unnest(@ids, @namespaces) AS t (id, ns)",
                    new { ids = targets.Select(t => t.Id).ToArray(), namespaces = targets.Select(t => t.Namespace).ToArray() }, tx);
            }
            else
            {
                await connection.ExecuteAsync("INSERT INTO jobs (id, type, status, params, actor, created_at, scoped) VALUES (@Id, @Type, @Status, '{}', @Actor, @Created, 1)", jobs, tx);
                await connection.ExecuteAsync("INSERT INTO job_targets (job_id, cluster, namespace) VALUES (@Id, 'default', @Namespace)",
                    targets.Select(t => new { t.Id, t.Namespace }), tx);
            }
            await tx.CommitAsync();
            await connection.ExecuteAsync("ANALYZE", commandType: System.Data.CommandType.Text);

            const string Page = "SELECT id FROM jobs WHERE status = 'failed' AND id < 'zzzzzzzzzzzzzzzzzzzzzzzzzz' ORDER BY id DESC LIMIT 51";
            var plan = provider == Provider.Postgres
                ? string.Join(" | ", await connection.QueryAsync<string>("EXPLAIN " + Page))
                : string.Join(" | ", (await connection.QueryAsync("EXPLAIN QUERY PLAN " + Page)).Select(row => (string)row.detail));
            output.WriteLine($"plan (status): {plan}");
            Assert.Contains("ix_jobs_status_id", plan, StringComparison.Ordinal);
        }

        using var http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = server.BaseAddress };
        var form = await http.GetStringAsync("/signin");
        var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        (await http.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["key"] = OpsgateServer.AdminKey, ["__RequestVerificationToken"] = token }))).EnsureSuccessStatusCode();

        foreach (var query in new[] { "", "?status=failed", "?type=pg-rebuild&actor=user7", "?namespace=staging", "?cluster=default&namespace=prod", $"?from={start.AddDays(3):yyyy-MM-dd}&to={start.AddDays(3):yyyy-MM-dd}" })
        {
            var times = new List<double>();
            string? before = null;
            for (var pageNo = 0; pageNo < 5; pageNo++)
            {
                var url = "/jobs" + query + (before is null ? "" : (query.Length == 0 ? "?" : "&") + "before=" + before);
                var watch = Stopwatch.StartNew();
                var html = await http.GetStringAsync(url);
                times.Add(watch.Elapsed.TotalMilliseconds);
                var ids = System.Text.RegularExpressions.Regex.Matches(html, "data-job=\"([0-9a-z]{26})\"").Select(m => m.Groups[1].Value).ToList();
                Assert.Equal(50, ids.Count);
                Assert.True(before is null || string.CompareOrdinal(ids[0], before) < 0, "a page continues after the last one");
                before = ids[^1];
            }
            times.Sort();
            output.WriteLine($"/jobs{query}: 5 pages, median {times[2]:0.0} ms, max {times[^1]:0.0} ms");
            // Generous for a shared 2-core machine; a page that walked every job would take seconds.
            Assert.True(times[2] < 400, $"/jobs{query}: median {times[2]:0.0} ms");
        }
    }

    private sealed record SeedJob(string Id, string Type, string Status, string Actor, DateTime Created);
}
