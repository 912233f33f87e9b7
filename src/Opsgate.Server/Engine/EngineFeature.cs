using Opsgate.Server.Engine.Notifications;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Engine;

/// <summary>The job engine: store, submission, worker, runner, runbooks, notifications and the built-in step kinds. Its routes are the Jobs feature's.</summary>
internal static class EngineFeature
{
    public static void AddJobEngine(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        builder.AddRunbooks(); // binds Jobs:
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<JobsOptions>, JobsOptionsValidator>();
        services.AddSingleton<JobSignals>();
        services.AddSingleton<JobAdmission>();
        services.AddSingleton<JobStore>();
        services.AddSingleton<JobCommands>();
        services.AddSingleton<JobSubmission>();
        services.AddSingleton<JobScope>();
        services.AddSingleton<JobSecrets>();
        services.AddSingleton<Jobs.JobAccess>();
        services.AddSingleton<JobRunner>();
        builder.AddNotifications(); // before the worker: hosted services stop in reverse order, and jobs finishing at shutdown still notify
        services.AddSingleton<JobWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<JobWorker>());
        services.AddHostedService<EventPruner>();

        services.AddOptionsCheck<JobsOptions>();
        services.AddOptionsCheck<NotificationsOptions>();
        services.AddStartupCheck(sp => sp.GetRequiredService<RunbookCatalog>().Validate());
        // Secret parameters of jobs stored before they were sealed move to the secret store before any job runs.
        services.AddStartupTask((sp, ct) => sp.GetRequiredService<JobSecrets>().SealStoredJobsAsync(sp.GetRequiredService<RunbookCatalog>(), ct));

        services.AddStepExecutor<NoopStep>()
            .AddStepExecutor<SleepStep>()
            .AddStepExecutor<HttpCallStep>()
            .AddStepExecutor<NotifyWebhookStep>();
    }

    /// <summary>Registers a step kind; runbooks can use it from the next start.</summary>
    public static IServiceCollection AddStepExecutor<T>(this IServiceCollection services) where T : class, IStepExecutor
    {
        services.AddSingleton<IStepExecutor, T>();
        return services;
    }
}

internal sealed class JobsOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<JobsOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, JobsOptions options)
    {
        if (options.Workers is < 1 or > 256)
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:Workers must be between 1 and 256, not {options.Workers}");
        if (options.ChildWorkers is < 1 or > 256)
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:ChildWorkers must be between 1 and 256, not {options.ChildWorkers}");
        if (options.LeaseDuration < TimeSpan.FromSeconds(1))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:LeaseDuration must be at least 00:00:01, not {options.LeaseDuration}");
        if (options.PollInterval < TimeSpan.FromMilliseconds(10) || options.PollInterval > TimeSpan.FromMinutes(1))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:PollInterval must be between 00:00:00.010 and 00:01:00, not {options.PollInterval}");
        if (options.StepStartHold < TimeSpan.Zero || options.StepStartHold > TimeSpan.FromMinutes(1))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:StepStartHold must be between 0 and 00:01:00, not {options.StepStartHold}");
        if (options.EventRetention < TimeSpan.Zero)
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:EventRetention must be 0 (keep events forever) or a positive duration, not {options.EventRetention}");
        if (options.EventPruneInterval < TimeSpan.FromMilliseconds(100))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:EventPruneInterval must be at least 00:00:00.100, not {options.EventPruneInterval}");
        if (options.EventPruneBatch is < 1 or > 1_000_000)
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:EventPruneBatch must be between 1 and 1000000, not {options.EventPruneBatch}");
        if (options.RunbookDirectory is { Length: > 0 } dir && !Directory.Exists(dir))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Jobs:RunbookDirectory '{Path.GetFullPath(dir)}' does not exist");
        return Microsoft.Extensions.Options.ValidateOptionsResult.Success;
    }
}
