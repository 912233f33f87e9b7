using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Jobs;

/// <summary>apiops' GET /ops/jobs/{id} answers in apiops' four status words; /api/v1/jobs keeps Opsgate's.</summary>
public sealed class ApiopsJobsTests
{
    [Fact]
    public async Task Apiops_route_folds_every_state_into_pending_running_success_or_failed()
    {
        using var runbooks = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "gated.yaml"), """
            name: gated
            options: {requires_approval: true}
            steps:
              - {name: only, kind: noop}
            """);
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "broken.yaml"), """
            name: broken
            steps:
              - {name: first, kind: noop}
              - {name: call, kind: http.call, with: {url: "not a url"}}
            """);
        await File.WriteAllTextAsync(Path.Combine(runbooks.Path, "slow.yaml"), """
            name: slow
            steps:
              - {name: nap, kind: sleep, with: {duration: 30s}}
            """);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);

        var ran = await TestJobs.SubmitAsync(server.Admin, "noop", new { message = "hi" });
        Assert.Equal("succeeded", (await TestJobs.WaitAsync(server.Admin, ran)).Status());
        var apiops = await ApiopsAsync(server, ran);
        Assert.Equal("success", apiops.Status());
        Assert.All(apiops.StepStatuses(), s => Assert.Equal("success", s));

        var waiting = await TestJobs.SubmitAsync(server.Admin, "gated");
        Assert.Equal("waiting_approval", (await TestJobs.GetAsync(server.Admin, waiting)).Status());
        Assert.Equal("pending", (await ApiopsAsync(server, waiting)).Status());
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{waiting}/cancel", null)).StatusCode);
        Assert.Equal("cancelled", (await TestJobs.GetAsync(server.Admin, waiting)).Status());
        Assert.Equal("failed", (await ApiopsAsync(server, waiting)).Status());

        var slow = await TestJobs.SubmitAsync(server.Admin, "slow");
        await TestJobs.WaitAsync(server.Admin, slow, j => j.Step("nap").GetProperty("status").GetString() == "running");
        var running = await ApiopsAsync(server, slow);
        Assert.Equal("running", running.Status());
        Assert.Equal(["running"], running.StepStatuses());
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/v1/jobs/{slow}/cancel", null)).StatusCode);
        var stopped = await TestJobs.WaitAsync(server.Admin, slow);
        Assert.Equal(["skipped"], stopped.StepStatuses());
        Assert.Equal(["failed"], (await ApiopsAsync(server, slow)).StepStatuses());

        var broken = await TestJobs.SubmitAsync(server.Admin, "broken");
        var failed = await TestJobs.WaitAsync(server.Admin, broken);
        Assert.Equal("failed", failed.Status());
        Assert.Equal(["succeeded", "failed"], failed.StepStatuses());
        apiops = await ApiopsAsync(server, broken);
        Assert.Equal("failed", apiops.Status());
        Assert.Equal(["success", "failed"], apiops.StepStatuses());
        Assert.Equal(failed.GetProperty("error").GetString(), apiops.GetProperty("error").GetString());
    }

    private static async Task<JsonElement> ApiopsAsync(OpsgateServer server, string id)
    {
        var response = await server.Admin.GetAsync($"/ops/jobs/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }
}
