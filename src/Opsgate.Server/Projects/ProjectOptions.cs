using Microsoft.Extensions.Options;

namespace Opsgate.Server.Projects;

/// <summary>How projects are fetched, how many checkouts are kept, and which repositories on the server's own disk projects may use (section <c>Ansible</c>).</summary>
internal sealed class ProjectOptions
{
    public const string Section = "Ansible";

    /// <summary>The git binary, for projects: a name looked up on PATH, or a full path.</summary>
    public string GitCommand { get; set; } = "git";

    /// <summary>Limit for one git command (ls-remote, fetch, checkout) of a project.</summary>
    public TimeSpan GitTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>SSH connection timeout of git over SSH: the same <c>Ansible:ConnectTimeout</c> ansible runs use (checked with the Ansible settings).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Checkouts kept per project: its most recently used commits (commits an unfinished job pins are kept as well).</summary>
    public int KeepCheckouts { get; set; } = 5;

    /// <summary>
    /// Directories whose repositories projects may name by a local path or a <c>file://</c> URL. Empty (the default):
    /// none, since such a project lets an operator read any repository the server's user can read.
    /// </summary>
    public List<string> LocalRepositoryRoots { get; set; } = [];
}

internal sealed class ProjectOptionsValidator : IValidateOptions<ProjectOptions>
{
    public ValidateOptionsResult Validate(string? name, ProjectOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.GitCommand))
            errors.Add("Ansible:GitCommand must name the git binary");
        if (options.GitTimeout < TimeSpan.FromSeconds(1))
            errors.Add($"Ansible:GitTimeout must be at least 00:00:01, not {options.GitTimeout}");
        if (options.KeepCheckouts is < 1 or > 1000)
            errors.Add($"Ansible:KeepCheckouts must be between 1 and 1000, not {options.KeepCheckouts}");
        for (var i = 0; i < options.LocalRepositoryRoots.Count; i++)
        {
            var root = options.LocalRepositoryRoots[i];
            if (!Path.IsPathFullyQualified(root))
                errors.Add($"Ansible:LocalRepositoryRoots:{i} must be an absolute path, not '{root}'");
            else if (!Directory.Exists(root))
                errors.Add($"Ansible:LocalRepositoryRoots:{i} '{root}' is not a directory");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
