namespace Opsgate.Server.Projects;

internal static class ProjectsExtensions
{
    /// <summary>Credentials and playbook projects from git (settings: Ansible:GitCommand, Ansible:GitTimeout, Ansible:KeepCheckouts, Ansible:LocalRepositoryRoots).</summary>
    public static void AddProjects(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<CredentialStore>();
        services.AddSingleton<ProjectStore>();
        services.AddSingleton<GitRunner>();
        services.AddSingleton<ProjectCache>();
        services.AddSingleton<LocalRepositories>();
        services.AddOptions<ProjectOptions>().Bind(builder.Configuration.GetSection(ProjectOptions.Section)).ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<ProjectOptions>, ProjectOptionsValidator>();
    }
}
