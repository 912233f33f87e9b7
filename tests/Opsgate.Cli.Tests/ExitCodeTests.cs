using System.Net;
using System.Net.Sockets;
using Opsgate.Cli.Tests.Infrastructure;

namespace Opsgate.Cli.Tests;

[Collection(SharedServer.Name)]
public sealed class ExitCodeTests(CliServer server) : IDisposable
{
    private readonly CliRunner _cli = new();

    [Fact]
    public async Task A_viewer_refused_by_the_server_exits_3_with_the_problem_detail()
    {
        _cli.Env["OPSGATE_SERVER"] = server.BaseAddress.ToString();
        _cli.Env["OPSGATE_KEY"] = await server.CreateKeyAsync("viewer-" + Guid.NewGuid().ToString("N")[..6], "viewer");

        Assert.Equal(0, (await _cli.RunAsync("get", "jobs")).Exit);
        var result = await _cli.RunAsync("run", "noop");

        Assert.True(result.Exit == 3, result.ToString());
        Assert.StartsWith("error: 403 ", result.Err, StringComparison.Ordinal);
        Assert.Contains("operator", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_key_exits_3()
    {
        _cli.Env["OPSGATE_SERVER"] = server.BaseAddress.ToString();
        _cli.Env["OPSGATE_KEY"] = "wrong-key";

        var result = await _cli.RunAsync("get", "jobs");

        Assert.True(result.Exit == 3, result.ToString());
        Assert.StartsWith("error: 401 ", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_exits_4()
    {
        // A port that was free a moment ago: nothing listens there.
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _cli.Env["OPSGATE_SERVER"] = $"http://127.0.0.1:{port}";
        _cli.Env["OPSGATE_KEY"] = "any";

        var result = await _cli.RunAsync("get", "jobs");

        Assert.True(result.Exit == 4, result.ToString());
        Assert.Contains("cannot reach the server", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("get")]
    [InlineData("run")]
    [InlineData("get", "jobs", "-o", "xml")]
    [InlineData("get", "jobs", "--limit", "0")]
    [InlineData("get", "jobs", "--status", "sleeping")]
    [InlineData("run", "noop", "-p", "message")]
    [InlineData("run", "slow", "-p", "count=many")]
    [InlineData("run", "slow", "--param-file", "/nonexistent/params.yaml")]
    public async Task Usage_errors_exit_2(params string[] args)
    {
        _cli.Env["OPSGATE_SERVER"] = server.BaseAddress.ToString();
        _cli.Env["OPSGATE_KEY"] = CliServer.AdminKey;

        var result = await _cli.RunAsync(args);

        Assert.True(result.Exit == 2, result.ToString());
        Assert.StartsWith("error: ", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_server_configured_is_a_usage_error_that_says_how_to_log_in()
    {
        var result = await _cli.RunAsync("get", "jobs");

        Assert.Equal(2, result.Exit);
        Assert.Contains("opsctl login --server URL", result.Err, StringComparison.Ordinal);
    }

    public void Dispose() => _cli.Dispose();
}
