using System.CommandLine;
using Opsgate.Cli.Config;
using Opsgate.Cli.Output;
using Opsgate.Client;
using Spectre.Console;

namespace Opsgate.Cli.Commands;

/// <summary>login and config: contexts in ~/.config/opsgate/config.yaml.</summary>
internal static class LoginCommands
{
    public static Command Login(CliIo io, GlobalOptions globals)
    {
        var server = new Option<string>("--server", "-s") { Description = "The server's URL, e.g. http://127.0.0.1:8080", Required = true };
        var name = new Option<string?>("--name") { Description = "The context's name (default: the --context given, else the server's host:port)" };
        var command = new Command("login", "Check an API key against a server and save both as a context (the key is read from stdin, or prompted for)")
        {
            server, name,
        };
        command.SetAction(async (parsed, ct) =>
        {
            var uri = GlobalOptions.ServerUri(parsed.GetValue(server)!);
            var key = ReadKey(io);
            using (var client = new OpsgateClient(uri, key))
            {
                // Any role may list runbooks: a 401 here means the key is wrong, not that it allows too little.
                await client.ListRunbooksAsync(ct);
            }
            var contextName = parsed.GetValue(name) ?? parsed.GetValue(globals.Context) ?? uri.Authority;
            var path = CliConfig.PathFor(io);
            var config = CliConfig.Load(path);
            config.Upsert(new CliContext(contextName, uri.ToString().TrimEnd('/'), key));
            config.CurrentContext = contextName;
            config.Save(path);
            await io.Out.WriteLineAsync($"logged in to {uri.ToString().TrimEnd('/')}; context '{contextName}' saved in {path} and made current");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string ReadKey(CliIo io)
    {
        string? key;
        if (io.InIsTerminal)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(io.Err) });
            key = console.Prompt(new TextPrompt<string>("API key:").Secret());
        }
        else
        {
            key = io.In.ReadLine();
        }
        key = key?.Trim();
        if (string.IsNullOrEmpty(key))
            throw new UsageException("no API key: give it on stdin (echo \"$KEY\" | opsctl login --server URL) or at the prompt");
        return key;
    }

    public static Command Config(CliIo io, GlobalOptions globals)
    {
        var getContexts = new Command("get-contexts", "List the contexts; * marks the current one");
        getContexts.SetAction(parsed =>
        {
            var config = CliConfig.Load(CliConfig.PathFor(io));
            var printer = globals.Printer(parsed, io);
            if (printer.IsStructured)
            {
                var contexts = new System.Text.Json.Nodes.JsonArray();
                foreach (var c in config.Contexts)
                    contexts.Add((System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["name"] = c.Name, ["server"] = c.Server, ["current"] = c.Name == config.CurrentContext });
                printer.Node(new System.Text.Json.Nodes.JsonObject { ["current_context"] = config.CurrentContext, ["contexts"] = contexts });
                return ExitCodes.Ok;
            }
            printer.Table(["CURRENT", "NAME", "SERVER"],
                config.Contexts.Select(c => (IReadOnlyList<string>)[c.Name == config.CurrentContext ? "*" : "", c.Name, c.Server]));
            return ExitCodes.Ok;
        });
        var contextName = new Argument<string>("name") { Description = "The context to make current" };
        var useContext = new Command("use-context", "Make a context the current one") { contextName };
        useContext.SetAction(parsed =>
        {
            var path = CliConfig.PathFor(io);
            var config = CliConfig.Load(path);
            var wanted = parsed.GetValue(contextName)!;
            if (config.Find(wanted) is null)
                throw new UsageException($"no context named '{wanted}' in {path}; there are: {string.Join(", ", config.Contexts.Select(c => c.Name))}");
            config.CurrentContext = wanted;
            config.Save(path);
            io.Out.WriteLine($"switched to context '{wanted}'");
            return ExitCodes.Ok;
        });
        return new Command("config", "Show and switch contexts") { getContexts, useContext };
    }
}
