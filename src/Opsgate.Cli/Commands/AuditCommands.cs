using System.CommandLine;
using System.Reflection;
using System.Text.Json.Nodes;
using Opsgate.Client;

namespace Opsgate.Cli.Commands;

/// <summary>audit verify, and version.</summary>
internal static class AuditCommands
{
    public static Command Audit(CliIo io, GlobalOptions globals)
    {
        var verify = new Command("verify", "Recompute the audit log's hash chain on the server (exit code 1 if it is broken)");
        verify.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var result = await client.VerifyAuditAsync(ct);
            if (printer.IsStructured)
                printer.Structured(result, OpsgateJson.Default.AuditVerification);
            else if (result.Ok)
                await io.Out.WriteLineAsync($"audit log intact: {result.Entries} entries, hash chain verified");
            else
                await io.Out.WriteLineAsync($"audit log BROKEN at entry {result.FirstBadId}: {result.Reason} ({result.Entries} entries checked)");
            return result.Ok ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return new Command("audit", "The audit log") { verify };
    }

    public static Command Version(CliIo io, GlobalOptions globals)
    {
        var command = new Command("version", "opsctl's version (no server is asked)");
        command.SetAction(parsed =>
        {
            var printer = globals.Printer(parsed, io);
            var version = typeof(AuditCommands).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            // The build appends +commit; kept, as it says which source this is.
            if (printer.IsStructured)
                printer.Node(new JsonObject { ["client_version"] = version, ["runtime"] = Environment.Version.ToString() });
            else
                io.Out.WriteLine($"opsctl {version} (.NET {Environment.Version})");
            return ExitCodes.Ok;
        });
        return command;
    }
}
