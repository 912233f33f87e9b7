using System.Net;
using System.Text;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>Precedence, lowest first: appsettings.json, the YAML file (--config or OPSGATE_CONFIG), OPSGATE_ variables, the command line.</summary>
public sealed class ConfigurationTests
{
    private const string YamlKey = "yaml-bootstrap-key-0123456789";
    private const string EnvKey = "env-bootstrap-key-0123456789";

    [Fact]
    public async Task The_YAML_file_takes_effect_environment_overrides_it_and_the_command_line_overrides_both()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir.Path, "opsgate.yaml"),
            $"""
            # Operator-style casing: configuration keys are case-insensitive.
            dataDir: yaml-data
            http:
              maxRequestBodyBytes: 2048
            auth:
              bootstrapAdminKey: {YamlKey}
            """);
        await using var opsgate = await OpsgateProcess.StartReadyAsync(dir.Path,
            ["--config", "opsgate.yaml", "--DataDir", "cli-data"],
            new Dictionary<string, string> { ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = EnvKey, ["OPSGATE_DATADIR"] = "env-data" });

        // YAML only: the body limit.
        await AssertBodyLimitAsync(opsgate.Client(EnvKey), 2048);
        // YAML < environment: the bootstrap key.
        Assert.Equal(HttpStatusCode.OK, (await opsgate.Client(EnvKey).GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await opsgate.Client(YamlKey).GetAsync("/health")).StatusCode);
        // YAML < environment < command line: the data directory.
        var dbPath = Path.Combine(dir.Path, "cli-data", "opsgate.db");
        Assert.Contains($"(database: sqlite {dbPath})", Assert.Single(opsgate.StdoutLines, l => l.Contains("listening", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.True(File.Exists(dbPath));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "env-data")));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "yaml-data")));
    }

    [Fact]
    public async Task OPSGATE_CONFIG_names_the_YAML_file()
    {
        using var dir = new TempDir();
        using var elsewhere = new TempDir();
        var file = Path.Combine(elsewhere.Path, "settings.yml");
        await File.WriteAllTextAsync(file,
            $"""
            Http:
              MaxRequestBodyBytes: 4096
            Auth:
              BootstrapAdminKey: {YamlKey}
            """);
        await using var opsgate = await OpsgateProcess.StartReadyAsync(dir.Path, environment: new Dictionary<string, string> { ["OPSGATE_CONFIG"] = file });

        await AssertBodyLimitAsync(opsgate.Client(YamlKey), 4096);
    }

    /// <summary>A body just under <paramref name="limit"/> reaches the endpoint (a 400 about the unknown field); one over it is a 413.</summary>
    private static async Task AssertBodyLimitAsync(HttpClient admin, int limit)
    {
        var under = await admin.PostAsync("/api/v1/apikeys", Body(limit - 100));
        var detail = await Problem.AssertAsync(under, HttpStatusCode.BadRequest);
        Assert.Contains("padding", detail, StringComparison.Ordinal);

        var over = await admin.PostAsync("/api/v1/apikeys", Body(limit + 100));
        detail = await Problem.AssertAsync(over, HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains("Http:MaxRequestBodyBytes", detail, StringComparison.Ordinal);
    }

    private static StringContent Body(int bytes)
    {
        const string start = "{\"name\":\"big\",\"role\":\"viewer\",\"padding\":\"";
        var json = start + new string('x', bytes - start.Length - 2) + "\"}";
        Assert.Equal(bytes, Encoding.UTF8.GetByteCount(json));
        return new StringContent(json, Encoding.UTF8, "application/json");
    }
}
