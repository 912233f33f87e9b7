namespace Opsgate.Cli;

/// <summary>
/// What a command reads and writes: the standard streams, whether they are terminals, and the environment. The
/// process passes the console's; tests pass captured writers and their own environment (HOME, OPSGATE_*).
/// </summary>
internal sealed class CliIo
{
    public required TextWriter Out { get; init; }
    public required TextWriter Err { get; init; }
    public required TextReader In { get; init; }

    /// <summary>Stdout is a terminal: live displays and colours; otherwise plain lines.</summary>
    public bool OutIsTerminal { get; init; }

    /// <summary>Stdin is a terminal: secrets are prompted for; otherwise read from stdin.</summary>
    public bool InIsTerminal { get; init; }

    public required Func<string, string?> Env { get; init; }

    public static CliIo FromConsole() => new()
    {
        Out = Console.Out,
        Err = Console.Error,
        In = Console.In,
        OutIsTerminal = !Console.IsOutputRedirected,
        InIsTerminal = !Console.IsInputRedirected,
        Env = Environment.GetEnvironmentVariable,
    };
}

/// <summary>opsctl's exit codes (docs/cli.md).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The job failed or was cancelled, or the server refused the request for another reason than access.</summary>
    public const int Failed = 1;

    public const int Usage = 2;
    public const int Auth = 3;
    public const int Unreachable = 4;
}

/// <summary>The command line is wrong (exit code 2); the message says how.</summary>
internal sealed class UsageException(string message) : Exception(message);
