using Microsoft.Extensions.Options;

namespace Opsgate.Server.Hosting;

/// <summary>A check a feature needs before the database is touched: a bad setting stops start-up with a message naming its key.</summary>
internal sealed record StartupCheck(Action<IServiceProvider> Run);

/// <summary>Work a feature needs done after the database is migrated and before the server listens (sealing old rows, sweeping leftovers).</summary>
internal sealed record StartupTask(Func<IServiceProvider, CancellationToken, Task> Run);

/// <summary>How features declare their start-up work, so that the host runs it without knowing any of them. Each runs in registration order.</summary>
internal static class StartupExtensions
{
    public static IServiceCollection AddStartupCheck(this IServiceCollection services, Action<IServiceProvider> check) =>
        services.AddSingleton(new StartupCheck(check));

    /// <summary>Reads the options once at start, so their validators (<see cref="IValidateOptions{TOptions}"/>) run before anything else.</summary>
    public static IServiceCollection AddOptionsCheck<T>(this IServiceCollection services) where T : class =>
        services.AddStartupCheck(sp => _ = sp.GetRequiredService<IOptions<T>>().Value);

    public static IServiceCollection AddStartupTask(this IServiceCollection services, Func<IServiceProvider, CancellationToken, Task> task) =>
        services.AddSingleton(new StartupTask(task));
}
