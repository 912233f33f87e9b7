using System.Diagnostics;
using System.Net;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The per-host page of a large run: sorted, filtered and far pages, and the output, against the API's per-host route.</summary>
[Collection(BrowserTests.Name)] // run alone, so the figures are not another browser test's
public sealed class UiAnsibleScaleTests(ITestOutputHelper output)
{
    /// <summary>
    /// A run over 20,000 hosts with 2 MB of output (seeded as the engine stores them): a sorted or filtered page of
    /// the table renders 50 rows and the output's tail 64 KiB, in time that does not grow with what is not shown.
    /// </summary>
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_run_over_20000_hosts_pages_sorts_and_filters_on_the_server_quickly(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        const int Total = 20_000;
        var id = Opsgate.Server.Engine.JobIds.New(DateTimeOffset.UtcNow);
        var now = DateTime.UtcNow;
        var hosts = Enumerable.Range(0, Total).Select(i => new
        {
            Host = $"host{i:00000}", Ok = 3 + i % 4, Changed = i % 3, Failed = i % 100 == 7 ? 1 : 0, Skipped = i % 5, Unreachable = i % 250 == 11 ? 1 : 0,
            Failures = i % 100 == 7 ? $$"""[{"kind":"failed","task":"break","message":"broken host{{i:00000}}","ignored":false}]""" : null,
        }).ToList();
        var line = new string('x', 40) + "\n";
        var texts = Enumerable.Range(1, 1000).Select(i => $$"""{"step":"playbook","stream":"stdout","text":"{{string.Concat(Enumerable.Repeat($"event {i:0000} {line}", 40)).Replace("\n", "\\n", StringComparison.Ordinal)}}"}""").ToList();
        await using (var connection = await server.OpenDatabaseAsync())
        {
            await using var tx = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync("INSERT INTO jobs (id, type, status, params, actor, created_at, scoped) VALUES (@id, 'ansible-playbook', 'failed', '{}', 'admin', @now, @yes)",
                new { id, now, yes = true }, tx);
            await connection.ExecuteAsync("INSERT INTO job_steps (job_id, step_order, name, kind, status) VALUES (@id, 1, 'playbook', 'ansible.run', 'failed')", new { id }, tx);
            if (provider == Provider.Postgres)
            {
                await connection.ExecuteAsync(
                    "INSERT INTO job_hosts (job_id, step_order, host, ok, changed, failed, skipped, unreachable, rescued, ignored, failures, complete) " +
                    "SELECT @id, 1, h, o, c, f, s, u, 0, 0, fs, true FROM unnest(@hs, @os, @cs, @fls, @ss, @us, @fss) AS t (h, o, c, f, s, u, fs)",
                    new
                    {
                        id, hs = hosts.Select(h => h.Host).ToArray(), os = hosts.Select(h => h.Ok).ToArray(), cs = hosts.Select(h => h.Changed).ToArray(),
                        fls = hosts.Select(h => h.Failed).ToArray(), ss = hosts.Select(h => h.Skipped).ToArray(), us = hosts.Select(h => h.Unreachable).ToArray(),
                        fss = hosts.Select(h => h.Failures).ToArray(),
                    }, tx);
                await connection.ExecuteAsync(
                    "INSERT INTO job_events (job_id, seq, ts, type, step_order, data) SELECT @id, n, @now, 'ansible.output', 1, d FROM unnest(@ns, @ds) AS t (n, d)",
                    new { id, now, ns = Enumerable.Range(1, texts.Count).Select(n => (long)n).ToArray(), ds = texts.ToArray() }, tx);
            }
            else
            {
                await connection.ExecuteAsync(
                    "INSERT INTO job_hosts (job_id, step_order, host, ok, changed, failed, skipped, unreachable, rescued, ignored, failures, complete) " +
                    "VALUES (@Id, 1, @Host, @Ok, @Changed, @Failed, @Skipped, @Unreachable, 0, 0, @Failures, 1)",
                    hosts.Select(h => new { Id = id, h.Host, h.Ok, h.Changed, h.Failed, h.Skipped, h.Unreachable, h.Failures }), tx);
                await connection.ExecuteAsync("INSERT INTO job_events (job_id, seq, ts, type, step_order, data) VALUES (@Id, @Seq, @Now, 'ansible.output', 1, @Data)",
                    texts.Select((d, i) => new { Id = id, Seq = (long)i + 1, Now = now.ToString("O"), Data = d }), tx);
            }
            await tx.CommitAsync();
        }

        using var http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = server.BaseAddress };
        var form = await http.GetStringAsync("/signin");
        var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        (await http.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["key"] = OpsgateServer.AdminKey, ["__RequestVerificationToken"] = token }))).EnsureSuccessStatusCode();

        // For comparison: the API's per-host route, which reads and sums the same rows and answers all 20,000 hosts.
        var apiTimes = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            var all = await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/hosts");
            apiTimes.Add(watch.Elapsed.TotalMilliseconds);
            Assert.Contains("host19999", all, StringComparison.Ordinal);
        }
        apiTimes.Sort();
        output.WriteLine($"{provider} GET /api/v1/jobs/{{id}}/hosts (all {Total} hosts): median {apiTimes[2]:0.0} ms, max {apiTimes[^1]:0.0} ms");

        foreach (var (query, rows, first) in new[]
        {
            ("", 50, "host00000"), ("?sort=failed&dir=desc", 50, "host00007"), ("?outcome=failed&host=host1", 50, "host10007"),
            ("?outcome=unreachable", 50, "host00011"), ("?p=400", 50, "host19950"), ("?sort=ok&dir=desc&p=2", 50, null),
        })
        {
            var times = new List<double>();
            string html = "";
            for (var i = 0; i < 5; i++)
            {
                var watch = Stopwatch.StartNew();
                html = await http.GetStringAsync($"/jobs/{id}/hosts{query}");
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
            var shown = System.Text.RegularExpressions.Regex.Matches(html, "<tr data-host=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
            Assert.Equal(rows, shown.Count);
            if (first is not null)
                Assert.Equal(first, shown[0]);
            Assert.Contains("event 1000 ", html, StringComparison.Ordinal); // the tail of the output
            Assert.DoesNotContain("event 0001 ", html, StringComparison.Ordinal); // not its start
            times.Sort();
            output.WriteLine($"{provider} /jobs/{{id}}/hosts{query}: {html.Length / 1024} KiB, median {times[2]:0.0} ms, max {times[^1]:0.0} ms");
            // Generous for a shared 2-core machine: a page costs about what the API's answer of every host costs.
            Assert.True(times[2] < 3000, $"/jobs/{id}/hosts{query}: median {times[2]:0.0} ms");
        }
        var fullWatch = Stopwatch.StartNew();
        var full = await http.GetStringAsync($"/jobs/{id}/hosts?handler=Stdout");
        output.WriteLine($"{provider} whole output: {full.Length / 1024} KiB in {fullWatch.Elapsed.TotalMilliseconds:0} ms");
        Assert.StartsWith("event 0001 ", full, StringComparison.Ordinal);
        Assert.Equal(1000 * 40, full.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
