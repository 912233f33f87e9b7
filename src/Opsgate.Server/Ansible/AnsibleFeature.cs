using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Engine;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Ansible;

/// <summary>Ansible runs (the <c>ansible.run</c> step kind, sandbox, sharding, per-host results) and inventories, with their routes.</summary>
internal static class AnsibleFeature
{
    /// <summary>The callback plugin is embedded and written into each run's private directory, so a published single binary carries it.</summary>
    public const string CallbackResource = "ansible/callback/opsgate_events.py";

    public static void AddAnsible(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<AnsibleOptions>().Bind(builder.Configuration.GetSection(AnsibleOptions.Section));
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<AnsibleOptions>, AnsibleOptionsValidator>();
        services.AddOptionsCheck<AnsibleOptions>();
        services.AddSingleton<AnsibleSandbox>();
        services.AddSingleton<Observability.IHealthPart>(sp => sp.GetRequiredService<AnsibleSandbox>());
        services.AddHostedService<AnsibleSandboxProbe>();
        services.AddSingleton<AnsibleProcess>();
        services.AddSingleton<AnsibleResults>();
        services.AddSingleton<InventoryExpander>();
        services.AddSingleton<InventoryStore>();
        services.AddSingleton<InventorySecrets>();
        services.AddSingleton<InventorySealer>();
        services.AddStartupTask((sp, ct) => sp.GetRequiredService<InventorySealer>().SealOldVersionsAsync(ct));
        services.AddSingleton<ShardedRun>();
        services.AddSingleton<FailedHostsRetry>();
        services.AddSingleton<Jobs.IHostsRetry>(sp => sp.GetRequiredService<FailedHostsRetry>());
        services.AddSingleton<InventorySources>();
        services.AddSingleton<InventoryViews>();
        services.AddStepExecutor<AnsibleRunStep>();
    }

    public static void MapAnsible(this WebApplication app) => app.MapAnsibleApi();
}
