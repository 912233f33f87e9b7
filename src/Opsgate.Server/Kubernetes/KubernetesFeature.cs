using Opsgate.Server.Engine;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Kubernetes;

/// <summary>Clusters (registry, monitor, their routes), the atomic operations on them and the <c>k8s.*</c> step kinds.</summary>
internal static class KubernetesFeature
{
    public static void AddKubernetes(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<KubeOptions>().Bind(builder.Configuration.GetSection(KubeOptions.Section));
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<KubeOptions>, KubeOptionsValidator>();
        services.AddOptionsCheck<KubeOptions>();
        services.AddSingleton<ClusterRegistry>();
        services.AddSingleton<IClusterAllowlists>(sp => sp.GetRequiredService<ClusterRegistry>());
        services.AddStartupCheck(sp => sp.GetRequiredService<ClusterRegistry>().ValidateConfigured());
        services.AddSingleton<ClusterMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterMonitor>());
        services.AddSingleton<KubeOperations>();
        services.AddSingleton<KubeStepSupport>();
        services.AddStepExecutor<KubeScaleStep>()
            .AddStepExecutor<KubeWaitStep>()
            .AddStepExecutor<KubeDeleteStep>()
            .AddStepExecutor<KubeRestartStep>();
    }

    public static void MapKubernetes(this WebApplication app)
    {
        app.MapClustersApi();
        app.MapKubeOpsApi();
    }
}

internal sealed class KubeOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<KubeOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, KubeOptions options)
    {
        if (options.RequestTimeout <= TimeSpan.Zero || options.RequestTimeout > TimeSpan.FromMinutes(5))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Kubernetes:RequestTimeout must be between 00:00:00.001 and 00:05:00, not {options.RequestTimeout}");
        if (options.ProbeInterval < TimeSpan.FromSeconds(1))
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Kubernetes:ProbeInterval must be at least 00:00:01, not {options.ProbeInterval}");
        if (options.MaxReplicas is < 1 or > 100_000)
            return Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"Kubernetes:MaxReplicas must be between 1 and 100000, not {options.MaxReplicas}");
        return Microsoft.Extensions.Options.ValidateOptionsResult.Success;
    }
}
