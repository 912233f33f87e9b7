using System.Globalization;
using Opsgate.Cli.Output;
using Opsgate.Client;
using Spectre.Console;

namespace Opsgate.Cli.Commands;

/// <summary>
/// --follow: the job's steps with their state and duration, kept current from its event stream, until the job ends.
/// On a terminal a live table redrawn in place; otherwise one plain line per change, for logs and pipes.
/// </summary>
internal sealed class JobProgress
{
    private readonly SortedDictionary<int, StepLine> _steps = [];
    private string _status;
    private string? _error;

    private JobProgress(Job job)
    {
        _status = job.Status;
        foreach (var s in job.Steps ?? [])
            _steps[s.Order] = new StepLine(s.Order, s.Name, s.Kind) { Status = s.Status, Started = s.StartedAt, Finished = s.FinishedAt, Detail = s.Detail };
    }

    /// <summary>Follows <paramref name="job"/> to its end; answers the job as the server has it then.</summary>
    public static async Task<Job> FollowAsync(OpsgateClient client, Job job, CliIo io, Printer printer, CancellationToken ct)
    {
        var progress = new JobProgress(job);
        var options = new EventStreamOptions
        {
            OnReconnect = (seq, why) => io.Err.WriteLine($"connection lost ({why?.Message ?? "stream ended"}); resuming after event {seq.ToString(CultureInfo.InvariantCulture)}"),
        };
        var events = client.StreamJobEventsAsync(job.JobId, 0, options, ct);
        if (printer.IsStructured)
        {
            await foreach (var e in events)
                progress.Apply(e);
        }
        else if (io.OutIsTerminal)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(io.Out) });
            await console.Live(progress.Render(job.JobId)).AutoClear(false).StartAsync(async live =>
            {
                await foreach (var e in events)
                {
                    progress.Apply(e);
                    live.UpdateTarget(progress.Render(job.JobId));
                }
            });
        }
        else
        {
            await foreach (var e in events)
            {
                if (progress.Apply(e) is { } line)
                {
                    await io.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{e.Ts:HH:mm:ss.fff}  {line}"));
                    await io.Out.FlushAsync(ct);
                }
            }
        }
        var final = await FinalAsync(client, job.JobId, ct);
        if (printer.IsStructured)
        {
            printer.Structured(final, OpsgateJson.Default.Job);
            return final;
        }
        var took = Printer.Duration(final.StartedAt, final.FinishedAt);
        await io.Out.WriteLineAsync($"job/{final.JobId} {final.Status}{(took.Length > 0 ? " in " + took : "")}{(final.Error is null ? "" : ": " + final.Error)}");
        return final;
    }

    /// <summary>The finished job; a server restarting just then is waited for, as the event stream waits for it.</summary>
    private static async Task<Job> FinalAsync(OpsgateClient client, string id, CancellationToken ct)
    {
        var until = DateTime.UtcNow + new EventStreamOptions().ReconnectFor;
        while (true)
        {
            try
            {
                return await client.GetJobAsync(id, ct);
            }
            catch (HttpRequestException e) when (e.StatusCode is null && DateTime.UtcNow < until)
            {
                await Task.Delay(250, ct);
            }
        }
    }

    /// <summary>Applies one event; answers the plain line that says what changed, if anything did.</summary>
    private string? Apply(JobEvent e)
    {
        var data = e.Data;
        string? Text(string key) => data?[key]?.GetValueKind() == System.Text.Json.JsonValueKind.String ? data[key]!.GetValue<string>() : null;
        if (e.StepOrder is { } order && _steps.TryGetValue(order, out var step))
        {
            var where = $"step {order}/{_steps.Count} {step.Name}";
            switch (e.Type)
            {
                case "step.started":
                    step.Status = "running";
                    step.Started ??= e.Ts;
                    step.Finished = null;
                    return $"{where}  running";
                case "step.succeeded":
                    step.Status = "succeeded";
                    step.Finished = e.Ts;
                    step.Detail = Text("detail") ?? step.Detail;
                    // The runner's own measure: a quick step's start event is written late (held to share its end's
                    // transaction), so the events' timestamps understate it.
                    if (data?["seconds"] is { } seconds && seconds.GetValueKind() == System.Text.Json.JsonValueKind.Number)
                        step.Started = e.Ts - TimeSpan.FromSeconds(seconds.GetValue<double>());
                    return $"{where}  succeeded  {Printer.Duration(step.Started, step.Finished)}  {step.Detail}".TrimEnd();
                case "step.failed":
                    step.Status = "failed";
                    step.Finished = e.Ts;
                    step.Detail = Text("error") ?? step.Detail;
                    return $"{where}  failed  {Printer.Duration(step.Started, step.Finished)}  {step.Detail}".TrimEnd();
                case "step.retrying":
                    step.Status = "retrying";
                    step.Detail = Text("error");
                    return $"{where}  retrying: {step.Detail}";
                case "step.progress":
                    step.Detail = Text("message") ?? Text("detail") ?? step.Detail;
                    return null;
                default:
                    return null;
            }
        }
        switch (e.Type)
        {
            case "job.started":
                _status = "running";
                return "job running";
            case "job.cancel_requested":
                return "cancel requested";
            case "job.finished":
                _status = Text("status") ?? _status;
                _error = Text("error");
                // Steps that never started are skipped when a job fails or is cancelled.
                foreach (var s in _steps.Values.Where(s => s.Status is "pending" or "running" or "retrying"))
                    s.Status = _status == JobStatuses.Succeeded ? s.Status : "skipped";
                return null;
            default:
                return null;
        }
    }

    private Table Render(string id)
    {
        var table = new Table().Border(TableBorder.Simple)
            .Title($"job/{Markup.Escape(id)}: {Markup.Escape(_status)}{(_error is null ? "" : " - " + Markup.Escape(_error))}")
            .AddColumns("#", "STEP", "KIND", "STATUS", "DURATION", "DETAIL");
        var now = DateTime.UtcNow;
        foreach (var s in _steps.Values)
        {
            var colour = s.Status switch { "succeeded" => "green", "failed" => "red", "running" or "retrying" => "yellow", _ => "grey" };
            table.AddRow(
                s.Order.ToString(CultureInfo.InvariantCulture), Markup.Escape(s.Name), Markup.Escape(s.Kind), $"[{colour}]{Markup.Escape(s.Status)}[/]",
                Printer.Duration(s.Started, s.Finished ?? (s.Started is null ? null : now)), Markup.Escape(s.Detail ?? ""));
        }
        return table;
    }

    private sealed class StepLine(int order, string name, string kind)
    {
        public int Order { get; } = order;
        public string Name { get; } = name;
        public string Kind { get; } = kind;
        public string Status { get; set; } = "pending";
        public DateTime? Started { get; set; }
        public DateTime? Finished { get; set; }
        public string? Detail { get; set; }
    }
}
