using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Opsgate.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>The real binary's start: where it listens, what it prints, and the admin key an operator starts with.</summary>
public sealed partial class StartupTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Urls_is_honoured_and_the_start_up_line_names_the_address()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var dir = new TempDir();
        await using var opsgate = await OpsgateProcess.StartReadyAsync(dir.Path, ["--urls", $"http://127.0.0.1:{port}"]);

        var line = Assert.Single(opsgate.StdoutLines, l => l.StartsWith("Opsgate listening on ", StringComparison.Ordinal));
        Assert.StartsWith($"Opsgate listening on http://127.0.0.1:{port} (database: sqlite {Path.Combine(opsgate.DataDir, "opsgate.db")})", line, StringComparison.Ordinal);
        Assert.Equal(port, opsgate.BaseAddress.Port);
        Assert.Equal(HttpStatusCode.OK, (await opsgate.Client().GetAsync("/health/live")).StatusCode);
        // The issue asks for a start in under 2 s; shared CI machines vary too much to assert it, so it is reported.
        output.WriteLine($"process start to /health/ready 200: {opsgate.TimeToReady.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task First_start_prints_a_generated_admin_key_once_and_it_works()
    {
        using var dir = new TempDir();
        string key;
        await using (var first = await OpsgateProcess.StartReadyAsync(dir.Path))
        {
            var printed = first.StdoutLines.Select(l => GeneratedKey().Match(l)).Where(m => m.Success).ToList();
            key = Assert.Single(printed).Groups[1].Value;
            Assert.Equal(HttpStatusCode.OK, (await first.Client(key).GetAsync("/health")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await first.Client().GetAsync("/health")).StatusCode);
        }

        await using var second = await OpsgateProcess.StartReadyAsync(dir.Path);
        Assert.DoesNotContain("og_", second.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("generated", second.Output, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await second.Client(key).GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task A_configured_bootstrap_key_is_installed_and_replacing_it_retires_the_old_one()
    {
        const string oldKey = "first-bootstrap-key-0123456789";
        const string newKey = "second-bootstrap-key-0123456789";
        using var dir = new TempDir();
        await using (var first = await OpsgateProcess.StartReadyAsync(dir.Path, environment: Bootstrap(oldKey)))
        {
            Assert.DoesNotContain("generated", first.Output, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await first.Client(oldKey).GetAsync("/health")).StatusCode);
        }

        await using var second = await OpsgateProcess.StartReadyAsync(dir.Path, environment: Bootstrap(newKey));
        Assert.Equal(HttpStatusCode.OK, (await second.Client(newKey).GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await second.Client(oldKey).GetAsync("/health")).StatusCode);
    }

    private static Dictionary<string, string> Bootstrap(string key) => new() { ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = key };

    [GeneratedRegex(@"^\s+(og_[A-Za-z0-9_-]{43})\s*$")]
    private static partial Regex GeneratedKey();
}
