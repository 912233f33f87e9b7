using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Opsgate.Server.Tests.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The runbooks pages and the launch form: typed inputs, the API's validation, dry run, launch, the roles.</summary>
[Collection(BrowserTests.Name)]
public sealed partial class UiLaunchTests(Browser browser)
{
    /// <summary>A runbook with a parameter of every kind the form draws, a secret among them, gated by an approval.</summary>
    public const string ScaleWeb = """
        name: scale-web
        description: Scale the web deployment once an approver agrees.
        parameters:
          - {name: namespace, type: string, required: true, pattern: dns-label, description: Namespace of the web deployment.}
          - {name: replicas, type: int, default: 2, min: 0, max: 10, description: Replicas wanted.}
          - {name: urgency, type: enum, values: [low, high], default: low}
          - {name: notify, type: bool, default: true}
          - {name: ticket_token, type: string, secret: true, description: Token of the change ticket.}
        options: {requires_approval: true}
        steps:
          - name: scale
            kind: k8s.scale
            with: {cluster: default, namespace: "{{ params.namespace }}", kind: deployment, name: web, replicas: "{{ params.replicas }}"}
        """;

    public static async Task<TempDir> RunbooksAsync()
    {
        var dir = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "scale-web.yaml"), ScaleWeb);
        return dir;
    }

    [GeneratedRegex("/jobs/[0-9a-z]{26}$")]
    private static partial Regex JobPage();

    [Fact]
    public async Task A_pg_rebuild_launched_from_its_form_is_planned_by_a_dry_run_then_runs_live_to_the_end()
    {
        await using var sim = await SimCluster.StartAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        await SimCluster.RegisterAsync(server, sim, "default", ["prod"]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        await sim.Store.WaitUntilAsync(s => s.Get("v1", "pods", "prod", "postgres-0")?["status"]?["phase"]?.GetValue<string>() == "Running", TimeSpan.FromSeconds(10));
        var pvc = sim.Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0")?["metadata"]?["uid"]?.GetValue<string>();
        Assert.NotNull(pvc);

        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, operatorKey, "/runbooks");
        await Assertions.Expect(page.Locator("#runbooks tr[data-runbook='pg-rebuild']")).ToContainTextAsync("Rebuild one PostgreSQL replica");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "runbooks");

        await page.GetByRole(AriaRole.Link, new() { Name = "pg-rebuild", Exact = true }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/runbooks/pg-rebuild", StringComparison.Ordinal));
        await Assertions.Expect(page.Locator("#parameters tr[data-parameter='target_replicas']")).ToContainTextAsync("1 – 100");
        await Assertions.Expect(page.Locator("#parameters tr[data-parameter='namespace']")).ToContainTextAsync("dns-label");
        await Assertions.Expect(page.Locator("#steps tbody tr")).ToHaveCountAsync(5);
        await Assertions.Expect(page.Locator("#steps tr[data-step='delete_pvc']")).ToContainTextAsync("{{ params.pvc_template }}-{{ params.statefulset }}-{{ params.ordinal }}");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "runbook");

        await page.Locator("main").GetByRole(AriaRole.Link, new() { Name = "Launch" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/runbooks/pg-rebuild/launch", StringComparison.Ordinal));
        // Inputs follow the parameters' types; defaults are filled in, the required ones marked.
        await Assertions.Expect(page.GetByLabel("cluster")).ToHaveValueAsync("default");
        await Assertions.Expect(page.GetByLabel("cluster")).ToHaveAttributeAsync("pattern", new Regex("a-z0-9"));
        await Assertions.Expect(page.GetByLabel("ordinal")).ToHaveAttributeAsync("type", "number");
        await Assertions.Expect(page.GetByLabel("ordinal")).ToHaveAttributeAsync("min", "0");
        await Assertions.Expect(page.GetByLabel("ordinal")).ToHaveAttributeAsync("required", "required");
        await Assertions.Expect(page.GetByLabel("target_replicas")).ToHaveValueAsync("1");
        await Assertions.Expect(page.GetByLabel("target_replicas")).ToHaveAttributeAsync("max", "100");
        await page.GetByLabel("namespace").FillAsync("prod");
        await page.GetByLabel("statefulset").FillAsync("postgres");
        await page.GetByLabel("ordinal").FillAsync("0");

        await page.GetByRole(AriaRole.Button, new() { Name = "Dry run" }).ClickAsync();
        var plan = page.Locator("#plan");
        await Assertions.Expect(plan.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "succeeded", new() { Timeout = 30_000 });
        await Assertions.Expect(plan.Locator("#timeline li[data-status='succeeded']")).ToHaveCountAsync(5);
        await Assertions.Expect(plan.Locator("#timeline li[data-step='scale_sts_to_zero']")).ToContainTextAsync("would scale statefulset prod/postgres to 0 replicas (server-side dry run passed)");
        await Assertions.Expect(plan.Locator("#timeline li[data-step='delete_pvc']")).ToContainTextAsync("would delete persistentvolumeclaim prod/data-postgres-0");
        // The form keeps what was typed, for the real launch.
        await Assertions.Expect(page.GetByLabel("namespace")).ToHaveValueAsync("prod");
        await Assertions.Expect(page.GetByLabel("ordinal")).ToHaveValueAsync("0");
        // A dry run changes nothing.
        Assert.Equal("1", sim.Store.Get("apps/v1", "statefulsets", "prod", "postgres")?["spec"]?["replicas"]?.ToJsonString());
        Assert.Equal(pvc, sim.Store.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0")?["metadata"]?["uid"]?.GetValue<string>());
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "launch");
        await page.SetViewportSizeAsync(390, 844); // a phone: the plan and the form still pass the checks
        await Browser.AssertAccessibleAsync(page);
        await page.SetViewportSizeAsync(1280, 900);

        await page.GetByRole(AriaRole.Button, new() { Name = "Launch" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => JobPage().IsMatch(url));
        var id = page.Url[^26..];
        await Assertions.Expect(page.Locator("[data-job-status]")).ToHaveAttributeAsync("data-job-status", "succeeded", new() { Timeout = 45_000 });
        await Assertions.Expect(page.Locator("#timeline li[data-status='succeeded']")).ToHaveCountAsync(5);
        await Assertions.Expect(page.Locator("#live-state")).ToHaveTextAsync("Finished");

        var job = await TestJobs.GetAsync(server.Admin, id);
        Assert.False(job.GetProperty("dry_run").GetBoolean());
        Assert.Equal("olga", job.GetProperty("actor").GetString());
        Assert.Equal(0, job.GetProperty("params").GetProperty("ordinal").GetInt32());
        // The replica really was rebuilt: a new volume claim.
        await sim.Store.WaitUntilAsync(s => s.Get("v1", "persistentvolumeclaims", "prod", "data-postgres-0")?["metadata"]?["uid"]?.GetValue<string>() is { } uid && uid != pvc, TimeSpan.FromSeconds(10));
        var audit = await AuditAsync(server, "job.submit");
        Assert.Equal(2, audit.Count);
        Assert.All(audit, e => Assert.Equal("success", e.GetProperty("status").GetString()));
        Assert.Contains(audit, e => e.GetProperty("dry_run").GetBoolean());
        Assert.Contains(audit, e => e.GetProperty("job_id").GetString() == id && !e.GetProperty("dry_run").GetBoolean());
    }

    [Fact]
    public async Task A_launch_with_bad_input_shows_the_apis_message_keeps_the_form_and_makes_no_job()
    {
        using var runbooks = await RunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        var (_, operatorKey) = await server.CreateKeyAsync("olga", "operator");
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, operatorKey, "/");
        await page.GetByRole(AriaRole.Link, new() { Name = "Launch", Exact = true }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/launch", StringComparison.Ordinal));
        await Browser.AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Link, new() { Name = "scale-web" }).ClickAsync();
        await Browser.WaitForUrlAsync(page, url => url.EndsWith("/runbooks/scale-web/launch", StringComparison.Ordinal));

        await Assertions.Expect(page.GetByLabel("replicas")).ToHaveValueAsync("2");
        await Assertions.Expect(page.GetByLabel("replicas")).ToHaveAttributeAsync("max", "10");
        await Assertions.Expect(page.Locator("select#p-urgency")).ToHaveValueAsync("low");
        await Assertions.Expect(page.GetByLabel("notify")).ToBeCheckedAsync();
        await Assertions.Expect(page.GetByLabel("ticket_token")).ToHaveAttributeAsync("type", "password");
        await Browser.AssertAccessibleAsync(page);

        const string Secret = "tkt-9f2c-very-secret";
        await page.GetByLabel("namespace").FillAsync("prod");
        await page.GetByLabel("replicas").FillAsync("11");
        await page.Locator("select#p-urgency").SelectOptionAsync("high");
        await page.GetByLabel("ticket_token").FillAsync(Secret);
        // The browser would stop 11 itself (max=10); turned off here, as a client without those checks would send it.
        await page.Locator("#launch-form").EvaluateAsync("form => { form.noValidate = true; }");
        await page.GetByRole(AriaRole.Button, new() { Name = "Launch" }).ClickAsync();

        var api = await ProblemAsync(server.Client(operatorKey), new { @namespace = "prod", replicas = 11, urgency = "high", ticket_token = Secret });
        Assert.Equal("params.replicas: must be an integer between 0 and 10", api);
        await Assertions.Expect(page.Locator("#launch-error")).ToHaveTextAsync("Not submitted: " + api);
        await Assertions.Expect(page.Locator("[data-field='replicas'] .field-error")).ToHaveTextAsync("replicas: must be an integer between 0 and 10");
        await Assertions.Expect(page.GetByLabel("replicas")).ToHaveAttributeAsync("aria-invalid", "true");
        await Assertions.Expect(page.GetByLabel("namespace")).ToHaveValueAsync("prod");
        await Assertions.Expect(page.GetByLabel("replicas")).ToHaveValueAsync("11");
        await Assertions.Expect(page.Locator("select#p-urgency")).ToHaveValueAsync("high");
        await Assertions.Expect(page.GetByLabel("ticket_token")).ToHaveValueAsync("");
        Assert.DoesNotContain(Secret, await page.ContentAsync(), StringComparison.Ordinal);
        await Browser.AssertAccessibleAsync(page);

        // A value the browser accepts but the API does not (the cluster is not registered): the API's words, at the top.
        await page.GetByLabel("replicas").FillAsync("3");
        await page.GetByLabel("ticket_token").FillAsync(Secret);
        await page.GetByRole(AriaRole.Button, new() { Name = "Launch" }).ClickAsync();
        var unknownCluster = await ProblemAsync(server.Client(operatorKey), new { @namespace = "prod", replicas = 3, urgency = "high", ticket_token = Secret });
        Assert.StartsWith("steps.scale.cluster: ", unknownCluster, StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#launch-error")).ToHaveTextAsync("Not submitted: " + unknownCluster);
        await Assertions.Expect(page.Locator(".field-error")).ToHaveCountAsync(0);

        var jobs = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs");
        Assert.Equal(0, jobs.GetProperty("items").GetArrayLength());
        var audit = await AuditAsync(server, "job.submit");
        Assert.Equal(4, audit.Count); // two from the form, two from the API calls above
        Assert.All(audit, e => Assert.Equal("error", e.GetProperty("status").GetString()));
        Assert.DoesNotContain(Secret, await server.Admin.GetStringAsync("/api/v1/audit?limit=200"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_viewer_is_offered_no_launch_and_a_launch_posted_anyway_is_refused_and_audited()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var (_, viewerKey) = await server.CreateKeyAsync("vic", "viewer");
        await using var context = await browser.ContextAsync(server);
        var page = await Browser.SignInAsync(context, viewerKey, "/runbooks");
        await Assertions.Expect(page.Locator("#runbooks tr[data-runbook='noop']")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Launch" })).ToHaveCountAsync(0);
        await page.GotoAsync("/runbooks/noop");
        await Assertions.Expect(page.Locator("#steps tr[data-step='noop']")).ToContainTextAsync("{{ params.message }}");
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Launch" })).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Approvals" })).ToHaveCountAsync(0);

        var chooser = await page.GotoAsync("/launch");
        Assert.Equal((int)HttpStatusCode.Forbidden, chooser!.Status);
        var form = await page.GotoAsync("/runbooks/noop/launch");
        Assert.Equal((int)HttpStatusCode.Forbidden, form!.Status);
        await Assertions.Expect(page.Locator(".notice.error")).ToContainTextAsync("this requires role operator or higher; vic has role viewer");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Launch" })).ToHaveCountAsync(0);

        // Posted anyway with a valid token of this session (the sign-out form's): refused, audited, no job.
        var token = await page.Locator("input[name='__RequestVerificationToken']").First.InputValueAsync();
        foreach (var handler in new[] { "Launch", "DryRun" })
        {
            var response = await context.APIRequest.PostAsync($"/runbooks/noop/launch?handler={handler}", new APIRequestContextOptions
            {
                Form = context.APIRequest.CreateFormData().Set("__RequestVerificationToken", token).Set("p.message", "hello"),
                MaxRedirects = 0,
            });
            Assert.Equal((int)HttpStatusCode.Forbidden, response.Status);
            Assert.Contains("requires role operator", await response.TextAsync(), StringComparison.Ordinal);
        }
        var jobs = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/jobs");
        Assert.Equal(0, jobs.GetProperty("items").GetArrayLength());
        var denied = await AuditAsync(server, "job.submit");
        Assert.Equal(2, denied.Count);
        Assert.All(denied, e =>
        {
            Assert.Equal("denied", e.GetProperty("status").GetString());
            Assert.Equal(403, e.GetProperty("http_status").GetInt32());
            Assert.Equal("vic", e.GetProperty("actor").GetString());
        });
    }

    /// <summary>What POST /api/v1/jobs answers scale-web with these parameters: its problem's detail (it must be a 4xx).</summary>
    private static async Task<string> ProblemAsync(HttpClient client, object parameters)
    {
        var response = await client.PostAsJsonAsync("/api/v1/jobs", new { type = "scale-web", @params = parameters }, OpsgateServer.Json);
        Assert.True((int)response.StatusCode is >= 400 and < 500, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!;
    }

    internal static async Task<List<JsonElement>> AuditAsync(OpsgateServer server, string action)
    {
        var page = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?limit=200");
        return [.. page.GetProperty("items").EnumerateArray().Where(e => e.GetProperty("action").GetString() == action)];
    }
}
