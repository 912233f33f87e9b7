using System.Diagnostics;
using System.Text.Json.Nodes;
using Opsgate.Cli.Tests.Infrastructure;

namespace Opsgate.Cli.Tests;

/// <summary>The built opsctl binary as a user starts it: its own process, real stdout, its exit code.</summary>
[Collection(SharedServer.Name)]
public sealed class ProcessTests(CliServer server)
{
    [Fact]
    public async Task The_opsctl_binary_runs_a_job_to_its_end_and_reports_it_with_its_exit_code()
    {
        var home = Directory.CreateTempSubdirectory("opsctl-proc-").FullName;
        try
        {
            var login = await RunAsync(home, CliServer.AdminKey + "\n", "login", "--server", server.BaseAddress.ToString());
            Assert.True(login.Exit == 0, login.ToString());

            var run = await RunAsync(home, null, "run", "noop", "-p", "message=from a process", "--follow");
            Assert.True(run.Exit == 0, run.ToString());
            Assert.Contains("step 1/1 noop  succeeded", run.Out, StringComparison.Ordinal);

            var failed = await RunAsync(home, null, "run", "fails", "--follow");
            Assert.True(failed.Exit == 1, failed.ToString());

            var version = await RunAsync(home, null, "version", "-o", "json");
            Assert.True(version.Exit == 0, version.ToString());
            Assert.StartsWith("1.", JsonNode.Parse(version.Out)!["client_version"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static async Task<CliResult> RunAsync(string home, string? stdin, params string[] args)
    {
        // The test project references opsctl, so its build output (opsctl.dll and the apphost) sits beside the tests.
        var apphost = Path.Combine(AppContext.BaseDirectory, "opsctl");
        var start = File.Exists(apphost)
            ? new ProcessStartInfo(apphost)
            : new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "opsctl.dll") } };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        start.Environment["HOME"] = home;
        start.Environment.Remove("OPSGATE_SERVER");
        start.Environment.Remove("OPSGATE_KEY");
        start.Environment.Remove("OPSGATE_CONFIG");
        start.Environment.Remove("XDG_CONFIG_HOME");
        using var process = Process.Start(start)!;
        if (stdin is not null)
            await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await output, await error);
    }
}
