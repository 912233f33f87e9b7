using System.Net;
using System.Net.Sockets;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>A setting opsgate cannot start with, and the words the one-line error must contain.</summary>
public sealed record BadSetting(
    string Name, string[] Args, Dictionary<string, string> Environment, string[] Expected,
    string? FileName = null, string? FileContent = null, string? Secret = null)
{
    public override string ToString() => Name;
}

/// <summary>The real binary refuses bad settings before it listens: non-zero exit, one line on stderr naming the key, no stack trace.</summary>
public sealed class StartupErrorTests
{
    public static TheoryData<BadSetting> BadSettings => new()
    {
        new("unknown provider from the environment", [], new() { ["OPSGATE_DATABASE__PROVIDER"] = "mysql" }, ["Database:Provider", "'mysql'"]),
        new("body limit that is not a number", ["--Http:MaxRequestBodyBytes=abc"], [], ["Http:MaxRequestBodyBytes", "'abc'"]),
        new("zero rate limit", ["--RateLimit:PermitsPerSecond", "0"], [], ["RateLimit:PermitsPerSecond", "at least 1"]),
        new("no PostgreSQL writers", ["--Database:PostgresWriters=0"], [], ["Database:PostgresWriters", "between 1 and 1024"]),
        new("a negative step start hold", ["--Jobs:StepStartHold=-00:00:01"], [], ["Jobs:StepStartHold", "between 0 and 00:01:00"]),
        new("postgres without a connection string", [], new() { ["OPSGATE_DATABASE__PROVIDER"] = "postgres" }, ["Database:ConnectionString", "required"]),
        new("bootstrap key too short", [], new() { ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = "short-secret" }, ["Auth:BootstrapAdminKey", "at least 16 characters"],
            Secret: "short-secret"),
        new("YAML with bad indentation", ["--config", "opsgate.yaml"], [], ["opsgate.yaml' line 3, column 2", "did not find expected key"],
            "opsgate.yaml", "http:\n  maxRequestBodyBytes: 2048\n rateLimit:\n  burst: 5\n"),
        new("YAML with an unclosed flow sequence", ["--config", "opsgate.yaml"], [], ["opsgate.yaml' line 3, column 1", "not valid YAML"],
            "opsgate.yaml", "rateLimit:\n  burst: [5\nhttp: {}\n"),
        new("config file that does not exist", ["--config", "missing.yaml"], [], ["missing.yaml'", "does not exist"]),
        new("urls that are not an address", ["--urls", "nonsense"], [], ["urls", "'nonsense'"]),
        new("DataDir that is a file", [], [], ["DataDir", "data'"], "data", "not a directory"),
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task A_bad_setting_stops_start_up_with_one_line_naming_the_key(BadSetting bad)
    {
        using var dir = new TempDir();
        if (bad.FileName is not null)
            await File.WriteAllTextAsync(Path.Combine(dir.Path, bad.FileName), bad.FileContent);
        await using var opsgate = OpsgateProcess.Start(dir.Path, bad.Args, bad.Environment);

        var exitCode = await opsgate.WaitForExitAsync();

        var output = opsgate.Output;
        Assert.True(exitCode != 0, $"opsgate exited with 0\n{output}");
        var line = Assert.Single(opsgate.StderrLines);
        Assert.StartsWith("opsgate: ", line, StringComparison.Ordinal);
        foreach (var expected in bad.Expected)
            Assert.Contains(expected, line, StringComparison.Ordinal);
        opsgate.AssertNoStackTrace();
        Assert.DoesNotContain("listening", output, StringComparison.Ordinal);
        if (bad.Secret is not null)
            Assert.DoesNotContain(bad.Secret, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_stops_start_up_with_a_line_naming_the_address()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";
        using var dir = new TempDir();
        await using var opsgate = OpsgateProcess.Start(dir.Path, ["--urls", url]);

        Assert.NotEqual(0, await opsgate.WaitForExitAsync());

        // Only stderr is checked: the generic host logs this failure to stdout, stack trace included, before Opsgate prints
        // its line, and it cannot be muted without also muting background-service crashes during start-up.
        var line = Assert.Single(opsgate.StderrLines);
        Assert.Equal($"opsgate: Failed to bind to address {url}: address already in use.", line);
    }
}
