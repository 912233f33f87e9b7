using System.ComponentModel;

namespace Opsgate.Server.Engine.Steps;

/// <summary><c>noop</c>: does nothing (benchmarks, tests, placeholders in runbooks being written).</summary>
internal sealed class NoopStep : StepExecutor<NoopStep.With>
{
    internal sealed record With([Description("recorded as the step's detail")] string? Message);

    public override string Kind => "noop";
    public override string Description => "Does nothing; records its message.";

    protected override Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken cancellationToken) =>
        Task.FromResult(new StepOutcome(with.Message ?? "done"));
}

/// <summary><c>sleep</c>: waits for a duration (a pause between steps; also how tests hold a job mid-run).</summary>
internal sealed class SleepStep(TimeProvider time) : StepExecutor<SleepStep.With>
{
    internal sealed record With([Description("how long, e.g. 30s or 5m")] TimeSpan Duration);

    public override string Kind => "sleep";
    public override string Description => "Waits for the given duration.";

    protected override async Task<StepOutcome> ExecuteAsync(StepContext context, With with, CancellationToken cancellationToken)
    {
        var duration = with.Duration;
        if (context.DryRun)
            return new StepOutcome($"would wait {duration}");
        await Task.Delay(duration, time, cancellationToken);
        return new StepOutcome($"waited {duration}");
    }
}
