using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Opsgate.Server.Tests.Infrastructure;
using Opsgate.Server.Ui;

namespace Opsgate.Server.Tests.Ui;

/// <summary>The approvals queue's query on both databases: others' jobs waiting for approval, within the namespaces, oldest first.</summary>
public sealed class ApprovalQueueQueryTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task The_queue_holds_the_jobs_of_others_waiting_within_the_namespaces_oldest_first(Provider provider)
    {
        await using var sim = await SimCluster.StartAsync();
        using var runbooks = await UiLaunchTests.RunbooksAsync();
        await using var server = await OpsgateServer.StartAsync(provider, [$"--Jobs:RunbookDirectory={runbooks.Path}"]);
        await SimCluster.RegisterAsync(server, sim, "default", ["prod", "staging"]);
        var (olgaId, olgaKey) = await server.CreateKeyAsync("olga", "operator");
        var (abeId, abeKey) = await server.CreateKeyAsync("abe", "approver");
        var olga = server.Client(olgaKey);
        var prod = await TestJobs.SubmitAsync(olga, "scale-web", new { @namespace = "prod" });
        var staging = await TestJobs.SubmitAsync(olga, "scale-web", new { @namespace = "staging" });
        var own = await TestJobs.SubmitAsync(server.Client(abeKey), "scale-web", new { @namespace = "prod" });
        var queued = await TestJobs.SubmitAsync(olga, "noop"); // not waiting for anyone

        using var scope = server.App.Services.CreateScope();
        var query = scope.ServiceProvider.GetRequiredService<ApprovalQueueQuery>();
        async Task<string[]> Ids(string me, string[]? namespaces, string? after = null, int limit = 10) =>
            [.. (await query.PageAsync(me, namespaces, after, limit, CancellationToken.None)).Select(j => j.Id)];

        Assert.Equal([prod, staging], await Ids(abeId, null));
        Assert.Equal([staging], await Ids(abeId, ["staging"]));
        Assert.Empty(await Ids(abeId, ["dev"]));
        Assert.Equal([staging], await Ids(abeId, null, after: prod));
        Assert.Equal([prod], await Ids(abeId, null, limit: 1));
        Assert.Equal([own], await Ids(olgaId, null));
        var row = (await query.PageAsync(abeId, null, null, 1, CancellationToken.None))[0];
        Assert.Equal(("olga", olgaId, "waiting_approval"), (row.Actor, row.PrincipalId, row.Status));
        Assert.Equal("prod", JsonNode.Parse(row.Params)!["namespace"]!.GetValue<string>());
        Assert.NotEqual(queued, row.Id);
    }
}
