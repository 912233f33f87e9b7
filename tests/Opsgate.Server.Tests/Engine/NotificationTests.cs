using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Job finish notifications over real HTTP to a loopback receiver: payloads, signature, filters, retries, and failures that leave the job alone.</summary>
public sealed class NotificationTests
{
    private const string PublicUrl = "https://opsgate.example.com/";

    private const string Breaks = """
        name: breaks
        steps:
          - {name: wait, kind: sleep, with: {duration: 30s}, timeout: 50ms}
        """;

    private const string Gated = """
        name: gated
        options: {requires_approval: true}
        steps:
          - {name: only, kind: noop}
        """;

    private static string[] Hook(string name, string url, params string[] settings) =>
        [$"--Notifications:Webhooks:{name}:Url={url}", .. settings.Select(s => $"--Notifications:Webhooks:{name}:{s}")];

    private static async Task<TempDir> RunbooksAsync(params string[] yamls)
    {
        var dir = new TempDir();
        for (var i = 0; i < yamls.Length; i++)
            await File.WriteAllTextAsync(Path.Combine(dir.Path, $"r{i}.yaml"), yamls[i]);
        return dir;
    }

    /// <summary>Waits for the audit entry recording what became of <paramref name="webhook"/>'s notification of job <paramref name="jobId"/>.</summary>
    internal static async Task<JsonElement> OutcomeAsync(OpsgateServer server, string jobId, string webhook, string action = "notify.sent")
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var page = await server.Admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?action={action}&limit=1000");
            foreach (var entry in page.GetProperty("items").EnumerateArray())
            {
                if (entry.GetProperty("job_id").GetString() == jobId && entry.GetProperty("resource_name").GetString() == webhook)
                    return entry;
            }
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"no {action} audit entry for webhook {webhook} and job {jobId}");
            await Task.Delay(25);
        }
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_finished_job_is_posted_once_to_the_generic_webhook_with_its_fields_and_a_correct_signature(Provider provider)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var server = await OpsgateServer.StartAsync(provider,
            [.. Hook("ops", receiver.Url("/hooks/opsgate"), "Secret=hmac-key-123"), $"--Notifications:PublicUrl={PublicUrl}"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "noop", new { message = "hi" });
        var job = await TestJobs.WaitAsync(server.Admin, id);
        var outcome = await OutcomeAsync(server, id, "ops");

        var hook = Assert.Single(receiver.Requests);
        Assert.Equal(("POST", "/hooks/opsgate"), (hook.Method, hook.PathAndQuery));
        Assert.StartsWith("application/json", hook.Header("Content-Type"), StringComparison.Ordinal);
        Assert.Equal("job.finished", hook.Header("X-Opsgate-Event"));
        Assert.Equal("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData("hmac-key-123"u8, hook.Body)), hook.Header("X-Opsgate-Signature"));
        Assert.False(string.IsNullOrEmpty(hook.Header("X-Opsgate-Delivery")));
        var body = hook.Json;
        Assert.Equal(("job.finished", id, "noop", "succeeded"),
            (body.GetProperty("event").GetString(), body.GetProperty("job_id").GetString(), body.GetProperty("type").GetString(), body.GetProperty("status").GetString()));
        Assert.Equal(JsonValueKind.Null, body.GetProperty("error").ValueKind);
        Assert.Equal("bootstrap-admin", body.GetProperty("actor").GetString());
        Assert.False(body.GetProperty("dry_run").GetBoolean());
        foreach (var time in new[] { "created_at", "started_at", "finished_at" })
            Assert.Equal(job.GetProperty(time).GetDateTime(), body.GetProperty(time).GetDateTime());
        Assert.Equal($"https://opsgate.example.com/api/v1/jobs/{id}", body.GetProperty("url").GetString());

        Assert.Equal("success", outcome.GetProperty("status").GetString());
        Assert.Equal(1, outcome.GetProperty("request_body").GetProperty("attempts").GetInt32());
        Assert.Equal("succeeded", (await TestJobs.GetAsync(server.Admin, id)).Status());
        var metrics = await server.Client().GetStringAsync("/metrics");
        Assert.Contains("opsgate_notifications_total{status=\"sent\",webhook=\"ops\"} 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_failed_sends_nothing_for_a_success_and_sends_a_failure_and_types_filter_by_runbook()
    {
        await using var everything = await WebhookReceiver.StartAsync();
        await using var failures = await WebhookReceiver.StartAsync();
        await using var rebuilds = await WebhookReceiver.StartAsync();
        using var dir = await RunbooksAsync(Breaks);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
        [
            $"--Jobs:RunbookDirectory={dir.Path}",
            .. Hook("everything", everything.Url()),
            .. Hook("failures", failures.Url(), "On=failed"),
            .. Hook("rebuilds", rebuilds.Url(), "Types=pg-rebuild, other"),
        ]);

        var ok = await TestJobs.SubmitAsync(server.Admin, "noop");
        await TestJobs.WaitAsync(server.Admin, ok);
        // Every webhook's decision about a job is made together, so once one was told the others chose too.
        await OutcomeAsync(server, ok, "everything");
        Assert.Empty(failures.Requests);

        var broken = await TestJobs.SubmitAsync(server.Admin, "breaks");
        Assert.Equal("failed", (await TestJobs.WaitAsync(server.Admin, broken)).Status());
        await OutcomeAsync(server, broken, "failures");
        await OutcomeAsync(server, broken, "everything");
        var failure = Assert.Single(failures.Requests).Json;
        Assert.Equal((broken, "failed"), (failure.GetProperty("job_id").GetString(), failure.GetProperty("status").GetString()));
        Assert.Contains("timed out", failure.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, everything.Requests.Count);
        Assert.Empty(rebuilds.Requests);
    }

    [Fact]
    public async Task Slack_teams_and_zulip_get_their_own_shapes()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        const string Zulip = "/zulip/api/v1/external/slack_incoming?api_key=zulip-key&stream=ops&topic=jobs";
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
        [
            $"--Notifications:PublicUrl={PublicUrl}",
            .. Hook("slack", receiver.Url("/slack"), "Format=slack"),
            .. Hook("teams", receiver.Url("/teams"), "Format=teams"),
            .. Hook("zulip", receiver.Url(Zulip), "Format=zulip"),
        ]);
        var id = await TestJobs.SubmitAsync(server.Admin, "noop");
        await TestJobs.WaitAsync(server.Admin, id);
        foreach (var name in new[] { "slack", "teams", "zulip" })
            await OutcomeAsync(server, id, name);
        var byPath = receiver.Requests.ToDictionary(r => r.PathAndQuery);
        var url = $"https://opsgate.example.com/api/v1/jobs/{id}";

        var slack = byPath["/slack"];
        Assert.Null(slack.Header("X-Opsgate-Signature"));
        Assert.Equal(["text"], slack.Json.EnumerateObject().Select(p => p.Name));
        Assert.Equal($"Opsgate job <{url}|noop {id}> *succeeded*\nrequested by bootstrap-admin", slack.Json.GetProperty("text").GetString());

        var teams = byPath["/teams"].Json;
        Assert.Equal("MessageCard", teams.GetProperty("@type").GetString());
        Assert.Equal("https://schema.org/extensions", teams.GetProperty("@context").GetString());
        Assert.Equal("Opsgate job noop succeeded", teams.GetProperty("summary").GetString());
        Assert.Equal("2EB886", teams.GetProperty("themeColor").GetString());
        Assert.Equal($"Opsgate job [noop {id}]({url}) **succeeded**\n\nrequested by bootstrap-admin", teams.GetProperty("text").GetString());

        // Zulip's Slack-compatible incoming webhook: Slack's JSON, posted to the URL with its api_key, stream and topic intact.
        var zulip = byPath[Zulip];
        Assert.Equal("POST", zulip.Method);
        Assert.StartsWith("application/json", zulip.Header("Content-Type"), StringComparison.Ordinal);
        Assert.Equal(slack.Text, zulip.Text);
    }

    [Fact]
    public async Task A_webhook_answering_500_twice_gets_the_notification_on_the_third_attempt()
    {
        await using var receiver = await WebhookReceiver.StartAsync(WebhookReceiver.Statuses(500, 500, 200));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            [.. Hook("flaky", receiver.Url()), "--Notifications:RetryDelay=00:00:00.020"]);
        var id = await TestJobs.SubmitAsync(server.Admin, "noop");
        await TestJobs.WaitAsync(server.Admin, id);
        var outcome = await OutcomeAsync(server, id, "flaky");
        Assert.Equal(3, outcome.GetProperty("request_body").GetProperty("attempts").GetInt32());
        Assert.Equal(3, receiver.Requests.Count);
        Assert.Single(receiver.Requests.Select(r => r.Header("X-Opsgate-Delivery")).Distinct());
        Assert.Single(receiver.Requests.Select(r => r.Text).Distinct());
    }

    [Fact]
    public async Task Failing_webhooks_leave_the_job_succeeded_and_are_recorded_without_secrets()
    {
        await using var receiver = await WebhookReceiver.StartAsync((ctx, _) =>
        {
            ctx.Response.StatusCode = ctx.Request.Path == "/refuse" ? 400 : 500;
            return ctx.Response.WriteAsync("nope");
        });
        var gone = await WebhookReceiver.StartAsync();
        var goneUrl = gone.Url("/gone?token=gone-secret-321");
        await gone.DisposeAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
        [
            "--Notifications:RetryDelay=00:00:00.020",
            .. Hook("down", receiver.Url("/down/path-secret-654?token=url-secret-456"), "Secret=hmac-secret-789"),
            .. Hook("refuses", receiver.Url("/refuse")),
            .. Hook("gone", goneUrl),
        ]);
        var id = await TestJobs.SubmitAsync(server.Admin, "noop");
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, id)).Status());

        var down = await OutcomeAsync(server, id, "down", "notify.failed");
        Assert.Equal("error", down.GetProperty("status").GetString());
        Assert.Equal(3, down.GetProperty("request_body").GetProperty("attempts").GetInt32());
        Assert.StartsWith("after 3 attempts: ", down.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        Assert.Contains("answered 500 Internal Server Error: nope", down.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        // A 400 will not change by asking again.
        var refused = await OutcomeAsync(server, id, "refuses", "notify.failed");
        Assert.Equal(1, refused.GetProperty("request_body").GetProperty("attempts").GetInt32());
        Assert.Contains("answered 400", refused.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        var unreachable = await OutcomeAsync(server, id, "gone", "notify.failed");
        Assert.Contains("could not reach http://127.0.0.1:", unreachable.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        Assert.Equal(4, receiver.Requests.Count);

        var job = await TestJobs.GetAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(JsonValueKind.Null, job.GetProperty("error").ValueKind);
        var audit = await server.Admin.GetStringAsync("/api/v1/audit?limit=1000");
        foreach (var secret in new[] { "url-secret-456", "path-secret-654", "hmac-secret-789", "gone-secret-321" })
            Assert.DoesNotContain(secret, audit, StringComparison.Ordinal);
        var metrics = await server.Client().GetStringAsync("/metrics");
        Assert.Contains("opsgate_notifications_total{status=\"failed\",webhook=\"down\"} 1", metrics, StringComparison.Ordinal);
        // The event stream still ends with job.finished: outcomes are in the audit log, not among the job's events.
        var events = await server.Admin.GetStringAsync($"/api/v1/jobs/{id}/events");
        Assert.EndsWith("event: job.finished", events.Trim().Split("\n\n")[^1].Split('\n')[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_waiting_job_that_is_cancelled_is_announced_as_cancelled()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        using var dir = await RunbooksAsync(Gated);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}", .. Hook("ops", receiver.Url())]);
        var id = await TestJobs.SubmitAsync(server.Admin, "gated");
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{id}/cancel", null)).StatusCode);
        await OutcomeAsync(server, id, "ops");
        var body = Assert.Single(receiver.Requests).Json;
        Assert.Equal((id, "cancelled"), (body.GetProperty("job_id").GetString(), body.GetProperty("status").GetString()));
        Assert.Equal("cancelled by bootstrap-admin", body.GetProperty("error").GetString());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("started_at").ValueKind);
    }

    [Theory]
    [InlineData("Notifications:Webhooks:ops:Url must be an absolute http or https URL", "Url=ftp://user:pw-secret@example.com/hook")]
    [InlineData("Notifications:Webhooks:ops:Url is required", "Format=slack")]
    [InlineData("Notifications:Webhooks:ops:Format must be generic, slack, teams or zulip, not 'discord'", "Url=https://example.com/h", "Format=discord")]
    [InlineData("Notifications:Webhooks:ops:On must be finished or failed, not 'always'", "Url=https://example.com/h", "On=always")]
    [InlineData("Notifications:Webhooks:ops:Secret is only used with Format generic", "Url=https://example.com/h", "Format=slack", "Secret=s")]
    public async Task A_bad_webhook_setting_stops_start_up_with_a_message_naming_the_key(string message, params string[] settings)
    {
        using var dir = new TempDir();
        await using var app = OpsgateHost.Build(
            ["--urls=http://127.0.0.1:0", $"--DataDir={dir.Path}", .. settings.Select(s => $"--Notifications:Webhooks:ops:{s}")]);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartOpsgateAsync());
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-secret", e.Message, StringComparison.Ordinal);
    }
}
