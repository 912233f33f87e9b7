using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Opsgate.Cli.Output;
using Opsgate.Client;

namespace Opsgate.Cli.Commands;

/// <summary>run, and jobs events|cancel|retry|approve|reject.</summary>
internal static class JobCommands
{
    public static Command Run(CliIo io, GlobalOptions globals)
    {
        var runbook = new Argument<string>("runbook") { Description = "The runbook to run (see 'opsctl get runbooks')" };
        var param = new Option<string[]>("--param", "-p") { Description = "A parameter as key=value (repeatable); typed by the runbook's schema" };
        var paramFile = new Option<string?>("--param-file", "-f") { Description = "A YAML file mapping parameter names to values; -p wins over it" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Plan only: every step runs in plan mode and changes nothing" };
        var follow = new Option<bool>("--follow", "-w") { Description = "Show the steps live and exit when the job ends (exit code 1 if it failed)" };
        var command = new Command("run", "Submit a job: a runbook and its parameters") { runbook, param, paramFile, dryRun, follow };
        command.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            var name = parsed.GetValue(runbook)!;
            var pairs = parsed.GetValue(param) ?? [];
            var file = parsed.GetValue(paramFile);
            using var client = globals.Client(parsed, io);
            var schema = (await client.ListRunbooksAsync(ct)).FirstOrDefault(r => r.Name == name);
            // An unknown runbook is left to the server, whose answer lists what exists.
            var parameters = file is null ? [] : YamlText.ReadParamFile(file);
            foreach (var pair in pairs)
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                    throw new UsageException($"-p {pair}: must be key=value");
                var key = pair[..eq];
                parameters[key] = Typed(key, pair[(eq + 1)..], schema?.Parameters.FirstOrDefault(p => p.Name == key));
            }
            var job = await client.SubmitJobAsync(name, parameters, parsed.GetValue(dryRun), ct);
            if (!parsed.GetValue(follow))
            {
                if (printer.IsStructured)
                    printer.Structured(job, OpsgateJson.Default.Job);
                else
                    await io.Out.WriteLineAsync($"job/{job.JobId} created ({job.Type}{(job.DryRun ? ", dry run" : "")})");
                return ExitCodes.Ok;
            }
            if (!printer.IsStructured)
                await io.Out.WriteLineAsync($"job/{job.JobId} created ({job.Type}{(job.DryRun ? ", dry run" : "")})");
            var final = await JobProgress.FollowAsync(client, job, io, printer, ct);
            return final.Status == JobStatuses.Succeeded ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return command;
    }

    /// <summary>A -p value as the runbook's parameter type wants it; without a schema, as the text it is.</summary>
    internal static JsonNode? Typed(string key, string text, RunbookParameter? schema)
    {
        switch (schema?.Type)
        {
            case "int":
                return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                    ? JsonValue.Create(n)
                    : throw new UsageException($"-p {key}={text}: {key} is an integer parameter");
            case "bool":
                return bool.TryParse(text, out var b) ? JsonValue.Create(b) : throw new UsageException($"-p {key}={text}: {key} is a boolean parameter (true or false)");
            case "object":
                try
                {
                    return JsonNode.Parse(text);
                }
                catch (JsonException e)
                {
                    throw new UsageException($"-p {key}=...: {key} is an object parameter and takes JSON ({e.Message})");
                }
            default:
                return JsonValue.Create(text);
        }
    }

    public static Command Jobs(CliIo io, GlobalOptions globals)
    {
        var jobs = new Command("jobs", "Act on one job: events, cancel, retry, approve, reject");

        var eventsId = new Argument<string>("id") { Description = "The job's id" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep streaming until the job ends (reconnects without gaps if the connection drops)" };
        var after = new Option<long>("--after") { Description = "Start after this event seq" };
        var events = new Command("events", "The job's events; without --follow, those recorded so far") { eventsId, follow, after };
        events.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var options = new EventStreamOptions
            {
                StopWhenQuietFor = parsed.GetValue(follow) ? null : TimeSpan.FromMilliseconds(500),
                OnReconnect = (seq, why) => io.Err.WriteLine($"reconnecting after seq {seq.ToString(CultureInfo.InvariantCulture)} ({why?.Message ?? "stream ended"})"),
            };
            await foreach (var e in client.StreamJobEventsAsync(parsed.GetValue(eventsId)!, parsed.GetValue(after), options, ct))
            {
                if (printer.IsStructured)
                    // One JSON object per line (NDJSON) in both structured formats: a stream has no enclosing document.
                    await io.Out.WriteLineAsync(JsonSerializer.Serialize(e, OpsgateJson.Default.JobEvent));
                else
                    await io.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"{e.Seq,-5} {e.Ts:HH:mm:ss.fff} {e.Type,-20} {(e.StepOrder is { } o ? "step " + o.ToString(CultureInfo.InvariantCulture) : ""),-8} {e.Data?.ToJsonString()}"));
                await io.Out.FlushAsync(ct);
            }
            return ExitCodes.Ok;
        });
        jobs.Subcommands.Add(events);

        jobs.Subcommands.Add(Simple(io, globals, "cancel", "Cancel a job; a running step is stopped", (c, id, _, ct) => c.CancelJobAsync(id, ct)));
        jobs.Subcommands.Add(Simple(io, globals, "approve", "Approve a job waiting for approval", (c, id, comment, ct) => c.ApproveJobAsync(id, comment, ct), withComment: true));
        jobs.Subcommands.Add(Simple(io, globals, "reject", "Reject a job waiting for approval (it is cancelled)", (c, id, comment, ct) => c.RejectJobAsync(id, comment, ct), withComment: true));

        var retryId = new Argument<string>("id") { Description = "The failed job's id" };
        var failedHosts = new Option<bool>("--failed-hosts") { Description = "Ansible jobs: a new job on the failed and unreachable hosts only" };
        var retry = new Command("retry", "Run a failed job again from its failed step") { retryId, failedHosts };
        retry.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var id = parsed.GetValue(retryId)!;
            if (parsed.GetValue(failedHosts))
            {
                var job = await client.RetryFailedHostsAsync(id, ct);
                if (printer.IsStructured)
                    printer.Structured(job, OpsgateJson.Default.Job);
                else
                    await io.Out.WriteLineAsync($"job/{job.JobId} created (retry of {id} on its failed hosts)");
                return ExitCodes.Ok;
            }
            Print(io, printer, await client.RetryJobAsync(id, ct));
            return ExitCodes.Ok;
        });
        jobs.Subcommands.Add(retry);
        return jobs;
    }

    private static Command Simple(CliIo io, GlobalOptions globals, string name, string description,
        Func<OpsgateClient, string, string?, CancellationToken, Task<JobCommandResult>> act, bool withComment = false)
    {
        var id = new Argument<string>("id") { Description = "The job's id" };
        var comment = new Option<string?>("--comment", "-m") { Description = "Why (kept with the decision and in the audit log)" };
        var command = new Command(name, description) { id };
        if (withComment)
            command.Options.Add(comment);
        command.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            Print(io, printer, await act(client, parsed.GetValue(id)!, withComment ? parsed.GetValue(comment) : null, ct));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void Print(CliIo io, Printer printer, JobCommandResult result)
    {
        if (printer.IsStructured)
            printer.Structured(result, OpsgateJson.Default.JobCommandResult);
        else
            io.Out.WriteLine($"job/{result.JobId} {result.Status}");
    }
}
