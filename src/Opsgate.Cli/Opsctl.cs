using System.CommandLine;
using System.Net.Sockets;
using Opsgate.Cli.Commands;
using Opsgate.Cli.Config;
using Opsgate.Cli.Output;
using Opsgate.Client;

namespace Opsgate.Cli;

/// <summary>opsctl's entry point: the command tree, the shared options, and errors turned into exit codes.</summary>
internal static class Opsctl
{
    public static async Task<int> RunAsync(string[] args, CliIo io, CancellationToken ct = default)
    {
        var globals = new GlobalOptions();
        var root = new RootCommand("opsctl: the Opsgate command line (jobs, runbooks, clusters, audit)");
        globals.AddTo(root);
        root.Subcommands.Add(LoginCommands.Login(io, globals));
        root.Subcommands.Add(LoginCommands.Config(io, globals));
        root.Subcommands.Add(GetCommands.Get(io, globals));
        root.Subcommands.Add(GetCommands.Describe(io, globals));
        root.Subcommands.Add(JobCommands.Run(io, globals));
        root.Subcommands.Add(JobCommands.Jobs(io, globals));
        root.Subcommands.Add(AuditCommands.Audit(io, globals));
        root.Subcommands.Add(AuditCommands.Version(io, globals));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
                await io.Err.WriteLineAsync($"error: {error.Message}");
            await io.Err.WriteLineAsync("see 'opsctl --help'");
            return ExitCodes.Usage;
        }
        var invocation = new InvocationConfiguration { Output = io.Out, Error = io.Err, EnableDefaultExceptionHandler = false };
        try
        {
            return await parsed.InvokeAsync(invocation, ct);
        }
        catch (UsageException e)
        {
            await io.Err.WriteLineAsync($"error: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (OpsgateApiException e)
        {
            await io.Err.WriteLineAsync($"error: {(int)e.Status} {e.Title}{(e.Detail is null ? "" : ": " + e.Detail)}");
            foreach (var (field, messages) in e.Errors)
            {
                foreach (var message in messages)
                {
                    // The detail already says the first field's problem; the rest are listed.
                    if (e.Detail is null || !e.Detail.Contains(message, StringComparison.Ordinal))
                        await io.Err.WriteLineAsync($"  {field}: {message}");
                }
            }
            return e.IsAuthProblem ? ExitCodes.Auth : ExitCodes.Failed;
        }
        catch (Exception e) when (Unreachable(e))
        {
            await io.Err.WriteLineAsync($"error: cannot reach the server: {Innermost(e).Message}");
            return ExitCodes.Unreachable;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return 130;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or NotSupportedException)
        {
            await io.Err.WriteLineAsync($"error: the server's answer could not be read: {e.Message}");
            return ExitCodes.Failed;
        }
    }

    private static bool Unreachable(Exception e) =>
        e is TimeoutException or SocketException || e is HttpRequestException { StatusCode: null } || e is IOException && e.InnerException is SocketException;

    private static Exception Innermost(Exception e)
    {
        var at = e;
        while (at.InnerException is not null && at is not SocketException)
            at = at.InnerException;
        return at is SocketException ? e : at;
    }
}

/// <summary>Options every command takes: which context, which output format.</summary>
internal sealed class GlobalOptions
{
    public Option<string?> Context { get; } = new("--context") { Description = "The context from the config file to use (default: its current-context)", Recursive = true };

    public Option<string> Output { get; } = new("--output", "-o")
    {
        Description = "Output format: table, wide, json or yaml",
        Recursive = true,
        DefaultValueFactory = _ => "table",
    };

    public void AddTo(RootCommand root)
    {
        Output.AcceptOnlyFromAmong("table", "wide", "json", "yaml");
        root.Options.Add(Context);
        root.Options.Add(Output);
    }

    public Printer Printer(ParseResult parsed, CliIo io) => new(io.Out, Cli.Output.Printer.Parse(parsed.GetValue(Output)));

    /// <summary>
    /// The server and key: OPSGATE_SERVER and OPSGATE_KEY win over the context (--context, else the config's current one).
    /// </summary>
    public OpsgateClient Client(ParseResult parsed, CliIo io)
    {
        var path = CliConfig.PathFor(io);
        var name = parsed.GetValue(Context);
        var envServer = io.Env("OPSGATE_SERVER") is { Length: > 0 } s ? s : null;
        var envKey = io.Env("OPSGATE_KEY") is { Length: > 0 } k ? k : null;
        CliContext? context = null;
        if (name is not null || envServer is null || envKey is null)
        {
            var config = CliConfig.Load(path);
            name ??= config.CurrentContext;
            context = name is null ? null : config.Find(name)
                ?? throw new UsageException($"no context named '{name}' in {path} (see 'opsctl config get-contexts')");
        }
        var server = envServer ?? context?.Server
            ?? throw new UsageException($"no server: run 'opsctl login --server URL' or set OPSGATE_SERVER (config: {path})");
        return new OpsgateClient(ServerUri(server), envKey ?? context?.Key);
    }

    public static Uri ServerUri(string text)
    {
        if (!Uri.TryCreate(text.EndsWith('/') ? text : text + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new UsageException($"server '{text}': must be an http or https URL such as http://127.0.0.1:8080");
        return uri;
    }
}
