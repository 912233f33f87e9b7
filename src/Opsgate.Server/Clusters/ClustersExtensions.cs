using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Clusters;

internal static class ClustersExtensions
{
    public static void AddKubernetes(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<KubeOptions>().Bind(builder.Configuration.GetSection(KubeOptions.Section));
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<KubeOptions>, KubeOptionsValidator>();
        builder.Services.AddSingleton<ClusterRegistry>();
        builder.Services.AddSingleton<ClusterMonitor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterMonitor>());
        builder.Services.AddSingleton<KubeOperations>();
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
