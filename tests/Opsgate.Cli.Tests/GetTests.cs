using System.Text.Json;
using System.Text.Json.Nodes;
using Opsgate.Cli.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Cli.Tests;

[Collection(SharedServer.Name)]
public sealed class GetTests : IDisposable
{
    private readonly CliServer _server;
    private readonly CliRunner _cli = new();

    public GetTests(CliServer server)
    {
        _server = server;
        _cli.Env["OPSGATE_SERVER"] = server.BaseAddress.ToString();
        _cli.Env["OPSGATE_KEY"] = CliServer.AdminKey;
    }

    [Fact]
    public async Task Get_jobs_prints_a_table_json_and_yaml_of_the_same_jobs()
    {
        var job = await _server.Admin.SubmitJobAsync("noop", new JsonObject { ["message"] = "listed" });
        await _server.WaitFinishedAsync(job.JobId);

        var table = await _cli.RunAsync("get", "jobs");
        Assert.True(table.Exit == 0, table.ToString());
        var lines = table.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^ID\s+TYPE\s+STATUS\s+ACTOR\s+AGE\s+DURATION$", lines[0]);
        Assert.Contains(lines, l => l.StartsWith(job.JobId, StringComparison.Ordinal) && l.Contains("noop", StringComparison.Ordinal) && l.Contains("succeeded", StringComparison.Ordinal));

        var wide = await _cli.RunAsync("get", "jobs", "-o", "wide", "--status", "succeeded");
        Assert.Matches(@"^ID\s+TYPE\s+STATUS\s+ACTOR\s+AGE\s+DURATION\s+DRY-RUN\s+REASON", wide.Out);

        var json = await _cli.RunAsync("get", "jobs", "-o", "json", "--type", "noop");
        Assert.True(json.Exit == 0, json.ToString());
        var items = JsonNode.Parse(json.Out)!["items"]!.AsArray();
        var listed = Assert.Single(items, i => i!["job_id"]!.GetValue<string>() == job.JobId)!;
        Assert.Equal("succeeded", listed["status"]!.GetValue<string>());
        Assert.Equal("listed", listed["params"]!["message"]!.GetValue<string>());
        Assert.All(items, i => Assert.Equal("noop", i!["type"]!.GetValue<string>()));

        var yaml = await _cli.RunAsync("get", "jobs", "-o", "yaml");
        Assert.True(yaml.Exit == 0, yaml.ToString());
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml.Out));
        var root = (YamlMappingNode)stream.Documents[0].RootNode;
        var yamlItems = (YamlSequenceNode)root.Children[new YamlScalarNode("items")];
        var yamlJob = yamlItems.Children.Cast<YamlMappingNode>().Single(i => ((YamlScalarNode)i.Children[new YamlScalarNode("job_id")]).Value == job.JobId);
        Assert.Equal("false", ((YamlScalarNode)yamlJob.Children[new YamlScalarNode("dry_run")]).Value);
    }

    [Fact]
    public async Task Get_jobs_pages_with_limit_and_cursor()
    {
        for (var i = 0; i < 3; i++)
            await _server.Admin.SubmitJobAsync("noop");

        var first = await _cli.RunAsync("get", "jobs", "--limit", "2", "-o", "json");
        var page = JsonNode.Parse(first.Out)!;
        Assert.Equal(2, page["items"]!.AsArray().Count);
        var cursor = page["next_cursor"]!.GetValue<string>();

        var table = await _cli.RunAsync("get", "jobs", "--limit", "2");
        Assert.Contains($"more: opsctl get jobs --cursor {cursor}", table.Err, StringComparison.Ordinal);

        var second = JsonNode.Parse((await _cli.RunAsync("get", "jobs", "--limit", "2", "--cursor", cursor, "-o", "json")).Out)!;
        var firstIds = page["items"]!.AsArray().Select(j => j!["job_id"]!.GetValue<string>());
        Assert.DoesNotContain(second["items"]!.AsArray(), j => firstIds.Contains(j!["job_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Get_runbooks_shows_parameters_and_describe_job_shows_steps()
    {
        var runbooks = await _cli.RunAsync("get", "runbooks");
        Assert.Matches(@"(?m)^pg-rebuild\s+5\s+-\s+.*namespace\*", runbooks.Out);
        Assert.Matches(@"(?m)^gated\s+1\s+approver\s", runbooks.Out);
        var json = JsonNode.Parse((await _cli.RunAsync("get", "runbooks", "-o", "json")).Out)!.AsArray();
        var slow = json.Single(r => r!["name"]!.GetValue<string>() == "slow")!;
        Assert.Equal("int", slow["parameters"]!.AsArray().Single(p => p!["name"]!.GetValue<string>() == "count")!["type"]!.GetValue<string>());

        var job = await _server.Admin.SubmitJobAsync("noop", new JsonObject { ["message"] = "described" });
        await _server.WaitFinishedAsync(job.JobId);
        var describe = await _cli.RunAsync("describe", "job", job.JobId);
        Assert.True(describe.Exit == 0, describe.ToString());
        Assert.Contains($"Id:           {job.JobId}", describe.Out, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^\s+1\s+noop\s+noop\s+succeeded\s+1\s+\d+\.\ds\s+described$", describe.Out);
    }

    [Fact]
    public async Task Get_clusters_lists_none_yet_and_audit_verify_finds_the_chain_intact()
    {
        var clusters = await _cli.RunAsync("get", "clusters", "-o", "json");
        Assert.True(clusters.Exit == 0, clusters.ToString());
        Assert.NotNull(JsonNode.Parse(clusters.Out)!["items"]);

        var verify = await _cli.RunAsync("audit", "verify");
        Assert.True(verify.Exit == 0, verify.ToString());
        Assert.Matches(@"audit log intact: \d+ entries", verify.Out);
        var verifyJson = JsonNode.Parse((await _cli.RunAsync("audit", "verify", "-o", "json")).Out)!;
        Assert.True(verifyJson["ok"]!.GetValue<bool>());
        Assert.True(verifyJson["entries"]!.GetValue<long>() > 0);
    }

    public void Dispose() => _cli.Dispose();
}
