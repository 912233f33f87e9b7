using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Opsgate.Cli.Tests.Infrastructure;
using Opsgate.Server.Hosting;

namespace Opsgate.Cli.Tests;

/// <summary>A server of its own, stopped and started again on the same port and data while opsctl follows a job.</summary>
public sealed class RestartTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "opsctl-restart-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly CliRunner _cli = new();

    [Fact]
    public async Task Run_follow_carries_on_across_a_server_restart_and_reports_the_end()
    {
        var runbooks = await CliServer.WriteRunbooksAsync(Path.Combine(_dir, "runbooks"));
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            _cli.Env["OPSGATE_SERVER"] = $"http://127.0.0.1:{((IPEndPoint)probe.LocalEndpoint).Port}";
            probe.Stop();
        }
        _cli.Env["OPSGATE_KEY"] = CliServer.AdminKey;
        string[] args = [.. CliServer.Args(_dir, runbooks), $"--urls={_cli.Env["OPSGATE_SERVER"]}"];
        var app = OpsgateHost.Build(args);
        await app.StartOpsgateAsync();
        // opsctl goes through a relay: cutting its connections lets the server stop at once (a graceful stop waits for
        // open requests, the event stream among them) and the restart lands while the first step runs.
        await using var proxy = new DroppingProxy(new Uri(_cli.Env["OPSGATE_SERVER"]!));
        _cli.Env["OPSGATE_SERVER"] = proxy.Address.ToString();
        try
        {
            var following = _cli.RunAsync("run", "slow", "-p", "pause=1s", "--follow");
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (!(_cli.LiveOut?.ToString() ?? "").Contains("step 1/3 first  running", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "the first step did not start");
                await Task.Delay(10);
            }
            // A graceful stop puts the running step back to pending; the next start runs it again.
            proxy.DropAll();
            await app.StopAsync();
            await app.DisposeAsync();
            app = OpsgateHost.Build(args);
            await app.StartOpsgateAsync();

            var result = await following;

            Assert.True(result.Exit == 0, result.ToString());
            Assert.Contains("connection lost", result.Err, StringComparison.Ordinal);
            Assert.Contains("step 3/3 third  succeeded", result.Out, StringComparison.Ordinal);
            // The first step was interrupted and ran again after the restart.
            Assert.Equal(2, result.Out.Split("step 1/3 first  running").Length - 1);
            Assert.Matches(@"job/[0-9a-z]{26} succeeded in [0-9.]+s\n$", result.Out);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _cli.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // The OS temp cleaner gets it.
        }
    }
}
