namespace Opsgate.Cli.Tests.Infrastructure;

public sealed record CliResult(int Exit, string Out, string Err)
{
    public override string ToString() => $"exit {Exit}\n--- stdout\n{Out}--- stderr\n{Err}";
}

/// <summary>
/// Runs opsctl's entry point in this process with captured stdout and stderr (not a terminal), its own HOME (so its
/// config file is the test's) and no OPSGATE_* variables unless the test sets them.
/// </summary>
public sealed class CliRunner : IDisposable
{
    public CliRunner() => Directory.CreateDirectory(Home);

    public string Home { get; } = Path.Combine(Path.GetTempPath(), "opsctl-home-" + Guid.NewGuid().ToString("N")[..12]);

    public string ConfigPath => Path.Combine(Home, ".config", "opsgate", "config.yaml");

    public Dictionary<string, string?> Env { get; } = [];

    /// <summary>What the command has written to stdout so far (while it runs).</summary>
    public TextWriter? LiveOut { get; private set; }

    public Task<CliResult> RunAsync(params string[] args) => RunWithInputAsync(null, args);

    public async Task<CliResult> RunWithInputAsync(string? stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var syncOut = TextWriter.Synchronized(output);
        LiveOut = output;
        var io = new CliIo
        {
            Out = syncOut,
            Err = TextWriter.Synchronized(error),
            In = new StringReader(stdin ?? ""),
            OutIsTerminal = false,
            InIsTerminal = false,
            Env = name => name == "HOME" ? Home : Env.GetValueOrDefault(name),
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var exit = await Task.Run(() => Opsctl.RunAsync(args, io, timeout.Token));
        return new CliResult(exit, output.ToString(), error.ToString());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
            // The OS temp cleaner gets it.
        }
    }
}
