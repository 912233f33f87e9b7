using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>The <c>http.call</c> and <c>notify.webhook</c> steps against a loopback receiver.</summary>
public sealed class HttpStepTests
{
    private const string Call = """
        name: call
        parameters:
          - {name: url, type: string, required: true}
        steps:
          - name: create
            kind: http.call
            with:
              url: "{{ params.url }}"
              method: post
              headers: {X-Token: abc}
              body: {name: web, replicas: 2}
              expect_status: 201
          - name: report
            kind: noop
            with:
              message: "got {{ steps.create.outputs.status }}: {{ steps.create.outputs.body }}"
        """;

    private static string Single(string name, string with, string extra = "") => $"""
        name: {name}
        parameters:
          - {"{"}name: url, type: string, required: true{"}"}
        steps:
          - name: call
            kind: http.call
            with: {with}
            {extra}
        """;

    private static async Task<(TempDir Dir, OpsgateServer Server)> StartAsync(params string[] yamls)
    {
        var dir = new TempDir();
        for (var i = 0; i < yamls.Length; i++)
            await File.WriteAllTextAsync(Path.Combine(dir.Path, $"r{i}.yaml"), yamls[i]);
        return (dir, await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={dir.Path}"]));
    }

    [Fact]
    public async Task A_call_sends_what_the_runbook_says_and_a_later_step_uses_its_status_and_body()
    {
        await using var receiver = await WebhookReceiver.StartAsync((ctx, _) =>
        {
            ctx.Response.StatusCode = 201;
            return ctx.Response.WriteAsJsonAsync(new { id = 7 });
        });
        var (dir, server) = await StartAsync(Call);
        using var runbooks = dir;
        await using var opsgate = server;
        var id = await TestJobs.SubmitAsync(server.Admin, "call", new { url = receiver.Url("/items?x=1") });
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal("""got 201: {"id":7}""", job.Step("report").GetProperty("detail").GetString());
        var output = job.Step("create").GetProperty("output");
        Assert.Equal(201, output.GetProperty("status").GetInt32());
        Assert.Equal(7, output.GetProperty("body").GetProperty("id").GetInt32());

        var request = Assert.Single(receiver.Requests);
        Assert.Equal(("POST", "/items?x=1", "abc"), (request.Method, request.PathAndQuery, request.Header("X-Token")));
        Assert.StartsWith("application/json", request.Header("Content-Type"), StringComparison.Ordinal);
        Assert.Equal("""{"name":"web","replicas":2}""", request.Text);
    }

    [Fact]
    public async Task A_dry_run_sends_nothing_and_says_what_it_would_send()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (dir, server) = await StartAsync(Call);
        using var runbooks = dir;
        await using var opsgate = server;
        var id = await TestJobs.SubmitAsync(server.Admin, "call", new { url = receiver.Url("/items") }, dryRun: true);
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.Equal("succeeded", job.Status());
        Assert.Equal($"would send POST {receiver.Url("/items")} with a 27-byte application/json; charset=utf-8 body and 1 header(s), expecting 201",
            job.Step("create").GetProperty("detail").GetString());
        Assert.Equal("got : ", job.Step("report").GetProperty("detail").GetString());
        Assert.Empty(receiver.Requests);
    }

    [Theory]
    [InlineData(404, "{url: \"{{ params.url }}\"}", "answered 404 Not Found, expected 2xx: missing")]
    [InlineData(200, "{url: \"{{ params.url }}\", expect_status: 204}", "answered 200 OK, expected 204: missing")]
    [InlineData(200, "{url: \"ftp://example.com/x\"}", "url must be an absolute http or https URL")]
    [InlineData(200, "{url: \"{{ params.url }}\", method: FETCH}", "method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, not 'FETCH'")]
    public async Task A_final_answer_or_a_bad_input_fails_the_step_without_retrying(int status, string with, string error)
    {
        await using var receiver = await WebhookReceiver.StartAsync((ctx, _) =>
        {
            ctx.Response.StatusCode = status;
            return ctx.Response.WriteAsync("missing");
        });
        var (dir, server) = await StartAsync(Single("once", with, "attempts: 3\n    backoff: 10ms"));
        using var runbooks = dir;
        await using var opsgate = server;
        var job = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "once", new { url = receiver.Url() }));
        Assert.Equal("failed", job.Status());
        Assert.Equal(1, job.Step("call").GetProperty("attempts").GetInt32());
        Assert.EndsWith(error, job.Step("call").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(receiver.Requests.Count <= 1);
    }

    [Fact]
    public async Task A_503_is_retried_per_the_steps_attempts_and_a_text_body_is_an_output()
    {
        await using var receiver = await WebhookReceiver.StartAsync((ctx, n) =>
        {
            ctx.Response.StatusCode = n < 2 ? 503 : 200;
            return ctx.Response.WriteAsync(n < 2 ? "busy" : "ok");
        });
        var (dir, server) = await StartAsync(Single("flaky", "{url: \"{{ params.url }}\"}", "attempts: 3\n    backoff: 10ms"),
            Single("flakier", "{url: \"{{ params.url }}\"}", "attempts: 2\n    backoff: 10ms"));
        using var runbooks = dir;
        await using var opsgate = server;
        var job = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "flaky", new { url = receiver.Url() }));
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(3, job.Step("call").GetProperty("attempts").GetInt32());
        Assert.Equal("ok", job.Step("call").GetProperty("output").GetProperty("body").GetString());
        Assert.Equal(3, receiver.Requests.Count);

        await using var down = await WebhookReceiver.StartAsync(WebhookReceiver.Statuses(503));
        job = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "flakier", new { url = down.Url() }));
        Assert.Equal("failed", job.Status());
        Assert.Equal(2, job.Step("call").GetProperty("attempts").GetInt32());
        Assert.Contains("answered 503", job.Step("call").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, down.Requests.Count);
    }

    [Fact]
    public async Task A_large_body_is_cut_to_64_KiB_and_then_kept_as_text()
    {
        await using var receiver = await WebhookReceiver.StartAsync((ctx, _) =>
        {
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync("[\"" + new string('a', 100_000) + "\"]");
        });
        var (dir, server) = await StartAsync(Single("big", "{url: \"{{ params.url }}\"}"));
        using var runbooks = dir;
        await using var opsgate = server;
        var job = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "big", new { url = receiver.Url() }));
        Assert.Equal("succeeded", job.Status());
        var body = job.Step("call").GetProperty("output").GetProperty("body");
        Assert.Equal(JsonValueKind.String, body.ValueKind);
        Assert.Equal(64 * 1024, body.GetString()!.Length);
        Assert.EndsWith("(body cut to 64 KiB)", job.Step("call").GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Notify_webhook_posts_the_message_in_the_format_asked_for()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (dir, server) = await StartAsync("""
            name: tell
            parameters:
              - {name: base, type: string, required: true}
            steps:
              - {name: chat, kind: notify.webhook, with: {url: "{{ params.base }}/slack", format: slack, message: "restarted *web*"}}
              - {name: hook, kind: notify.webhook, with: {url: "{{ params.base }}/generic", message: "done"}}
            """);
        using var runbooks = dir;
        await using var opsgate = server;
        var root = receiver.Url("/").TrimEnd('/');
        var id = await TestJobs.SubmitAsync(server.Admin, "tell", new { @base = root });
        var job = await TestJobs.WaitAsync(server.Admin, id);
        Assert.True(job.Status() == "succeeded", job.ToString());
        Assert.Equal($"posted a slack message to {root}", job.Step("chat").GetProperty("detail").GetString());
        var byPath = receiver.Requests.ToDictionary(r => r.PathAndQuery);
        Assert.Equal("""{"text":"restarted *web*"}""", byPath["/slack"].Text);
        var generic = byPath["/generic"];
        Assert.Equal("step.notify", generic.Header("X-Opsgate-Event"));
        Assert.Equal(("step.notify", id, "hook", "done"), (generic.Json.GetProperty("event").GetString(), generic.Json.GetProperty("job_id").GetString(),
            generic.Json.GetProperty("step").GetString(), generic.Json.GetProperty("message").GetString()));

        var dry = await TestJobs.WaitAsync(server.Admin, await TestJobs.SubmitAsync(server.Admin, "tell", new { @base = root }, dryRun: true));
        Assert.Equal($"would post a slack message to {root}", dry.Step("chat").GetProperty("detail").GetString());
        Assert.Equal(2, receiver.Requests.Count);
    }
}
