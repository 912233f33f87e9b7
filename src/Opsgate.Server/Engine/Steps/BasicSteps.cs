using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Engine.Steps;

/// <summary><c>noop</c>: does nothing (benchmarks, tests, placeholders in runbooks being written).</summary>
internal sealed class NoopStep : IStepExecutor
{
    public string Kind => "noop";
    public string Description => "Does nothing; records its message.";
    public IReadOnlyList<StepInput> Inputs { get; } = [new("message", InputType.String, false, "recorded as the step's detail")];

    public Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken) =>
        Task.FromResult(new StepOutcome(context.OptionalString("message") ?? "done"));
}

/// <summary><c>sleep</c>: waits for a duration (a pause between steps; also how tests hold a job mid-run).</summary>
internal sealed class SleepStep(TimeProvider time) : IStepExecutor
{
    public string Kind => "sleep";
    public string Description => "Waits for the given duration.";
    public IReadOnlyList<StepInput> Inputs { get; } = [new("duration", InputType.Duration, true, "how long, e.g. 30s or 5m")];

    public async Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken)
    {
        var duration = Durations.Parse(context.String("duration"));
        if (context.DryRun)
            return new StepOutcome($"would wait {duration}");
        await Task.Delay(duration, time, cancellationToken);
        return new StepOutcome($"waited {duration}");
    }
}
