using Opsgate.Server.Hosting;

namespace Opsgate.Server.Projects;

internal static class ProjectsFeature
{
    /// <summary>Playbook projects from git (settings: Ansible:GitCommand, Ansible:GitTimeout, Ansible:KeepCheckouts, Ansible:LocalRepositoryRoots).</summary>
    public static void AddProjects(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<ProjectStore>();
        services.AddSingleton<GitRunner>();
        services.AddSingleton<ProjectCache>();
        services.AddSingleton<LocalRepositories>();
        services.AddOptions<ProjectOptions>().Bind(builder.Configuration.GetSection(ProjectOptions.Section)).ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<ProjectOptions>, ProjectOptionsValidator>();
        // Checkouts a killed process left half made.
        services.AddStartupTask((sp, _) =>
        {
            sp.GetRequiredService<ProjectCache>().SweepLeftovers();
            return Task.CompletedTask;
        });
    }

    public static void MapProjects(this WebApplication app) => app.MapProjectsApi();
}
