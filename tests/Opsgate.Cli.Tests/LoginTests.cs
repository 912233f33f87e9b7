using Opsgate.Cli.Tests.Infrastructure;

namespace Opsgate.Cli.Tests;

[Collection(SharedServer.Name)]
public sealed class LoginTests(CliServer server) : IDisposable
{
    private readonly CliRunner _cli = new();

    [Fact]
    public async Task Login_saves_a_context_only_its_owner_can_read_and_later_commands_use_it()
    {
        var result = await _cli.RunWithInputAsync(CliServer.AdminKey + "\n", "login", "--server", server.BaseAddress.ToString(), "--name", "local");

        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_cli.ConfigPath));
        var config = await File.ReadAllTextAsync(_cli.ConfigPath);
        Assert.Contains("current-context: \"local\"", config, StringComparison.Ordinal);
        Assert.Contains(CliServer.AdminKey, config, StringComparison.Ordinal);

        // No OPSGATE_* variables: the saved context is what connects.
        var runbooks = await _cli.RunAsync("get", "runbooks");
        Assert.True(runbooks.Exit == 0, runbooks.ToString());
        Assert.Contains("noop", runbooks.Out, StringComparison.Ordinal);

        var contexts = await _cli.RunAsync("config", "get-contexts");
        Assert.Matches(@"(?m)^\*\s+local\s+http://127\.0\.0\.1:\d+$", contexts.Out);
        var yaml = await _cli.RunAsync("config", "get-contexts", "-o", "yaml");
        Assert.True(yaml.Exit == 0, yaml.ToString());
        Assert.Contains("current_context: local\n", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("  current: true\n", yaml.Out, StringComparison.Ordinal);
        // The key stays in the file: no output shows it.
        Assert.DoesNotContain(CliServer.AdminKey, yaml.Out + contexts.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Contexts_switch_and_the_environment_overrides_them()
    {
        Assert.Equal(0, (await _cli.RunWithInputAsync(CliServer.AdminKey, "login", "--server", server.BaseAddress.ToString(), "--name", "good")).Exit);
        // A second context (login makes it current); use-context switches back.
        Assert.Equal(0, (await _cli.RunWithInputAsync(CliServer.AdminKey, "login", "--server", server.BaseAddress.ToString(), "--name", "other")).Exit);
        var use = await _cli.RunAsync("config", "use-context", "good");
        Assert.True(use.Exit == 0, use.ToString());
        Assert.Contains("current-context: \"good\"", await File.ReadAllTextAsync(_cli.ConfigPath), StringComparison.Ordinal);

        var missing = await _cli.RunAsync("config", "use-context", "nope");
        Assert.Equal(2, missing.Exit);
        Assert.Contains("no context named 'nope'", missing.Err, StringComparison.Ordinal);

        // --context picks a context; OPSGATE_SERVER wins over the context's server.
        _cli.Env["OPSGATE_SERVER"] = "http://127.0.0.1:1";
        var overridden = await _cli.RunAsync("--context", "good", "get", "jobs");
        Assert.Equal(4, overridden.Exit);
        _cli.Env.Remove("OPSGATE_SERVER");
        Assert.Equal(0, (await _cli.RunAsync("--context", "other", "get", "jobs")).Exit);
    }

    [Fact]
    public async Task Login_with_a_wrong_key_exits_3_and_saves_nothing()
    {
        var result = await _cli.RunWithInputAsync("not-a-key\n", "login", "--server", server.BaseAddress.ToString());

        Assert.True(result.Exit == 3, result.ToString());
        Assert.Contains("401", result.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(_cli.ConfigPath));
    }

    public void Dispose() => _cli.Dispose();
}
