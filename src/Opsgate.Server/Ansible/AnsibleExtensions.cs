using Opsgate.Server.Ansible.Inventories;
using Opsgate.Server.Engine;

namespace Opsgate.Server.Ansible;

internal static class AnsibleExtensions
{
    /// <summary>The callback plugin is embedded and written into each run's private directory, so a published single binary carries it.</summary>
    public const string CallbackResource = "ansible/callback/opsgate_events.py";

    public static void AddAnsible(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<AnsibleOptions>().Bind(builder.Configuration.GetSection(AnsibleOptions.Section));
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<AnsibleOptions>, AnsibleOptionsValidator>();
        services.AddSingleton<AnsibleSandbox>();
        services.AddSingleton<Api.IHealthPart>(sp => sp.GetRequiredService<AnsibleSandbox>());
        services.AddHostedService<AnsibleSandboxProbe>();
        services.AddSingleton<AnsibleProcess>();
        services.AddSingleton<AnsibleResults>();
        services.AddSingleton<InventoryExpander>();
        services.AddSingleton<InventoryStore>();
        services.AddSingleton<InventorySecrets>();
        services.AddSingleton<InventorySealer>();
        services.AddSingleton<ShardedRun>();
        services.AddSingleton<FailedHostsRetry>();
        services.AddSingleton<Api.IHostsRetry>(sp => sp.GetRequiredService<FailedHostsRetry>());
        services.AddSingleton<InventorySources>();
        services.AddStepExecutor<AnsibleRunStep>();
    }
}
