namespace Opsgate.Server.Ansible;

/// <summary>How Opsgate runs <c>ansible-playbook</c> (section <c>Ansible</c>).</summary>
internal sealed class AnsibleOptions
{
    public const string Section = "Ansible";

    /// <summary>The ansible-playbook binary: a name looked up on the run's PATH, or a full path.</summary>
    public string PlaybookCommand { get; set; } = "ansible-playbook";

    /// <summary>The ansible-inventory binary, the authority on what an inventory holds (host ranges, groups, children).</summary>
    public string InventoryCommand { get; set; } = "ansible-inventory";

    /// <summary>Limit for expanding one inventory with ansible-inventory.</summary>
    public TimeSpan InventoryTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Directory that <c>playbook</c> paths of ansible.run steps without a <c>project</c> are relative to. Default: none, only projects and inline playbooks.</summary>
    public string? PlaybookDirectory { get; set; }

    /// <summary>Limit for one playbook run, whatever the runbook says: a host that drops off a reused SSH connection otherwise hangs ansible for 10+ minutes.</summary>
    public TimeSpan RunTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>After a cancel or timeout: how long ansible gets to stop after SIGINT before SIGTERM, and after SIGTERM before SIGKILL.</summary>
    public TimeSpan InterruptGrace { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan TerminateGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>SSH keep-alives (ServerAliveInterval / ServerAliveCountMax): a silent host is given up after interval × count.</summary>
    public TimeSpan SshServerAliveInterval { get; set; } = TimeSpan.FromSeconds(5);

    public int SshServerAliveCountMax { get; set; } = 3;

    /// <summary>SSH connection timeout (ANSIBLE_TIMEOUT).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Check SSH host keys (ANSIBLE_HOST_KEY_CHECKING). Keep it on in production; inventories may still override per host.</summary>
    public bool HostKeyChecking { get; set; } = true;

    /// <summary><c>shards: auto</c> makes one shard per this many hosts (at most 64 shards).</summary>
    public int HostsPerAutoShard { get; set; } = 50;

    /// <summary>Most events written to the database in one transaction.</summary>
    public int EventBatchSize { get; set; } = 1000;

    /// <summary>Most bytes of ansible's own stdout/stderr kept as <c>ansible.output</c> events per run; the rest is counted, not stored.</summary>
    public long MaxOutputBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// <c>auto</c>: runs go through bubblewrap when it is installed and works, else a warning at start; <c>bubblewrap</c>:
    /// required (start-up fails without it); <c>none</c>: never. See docs/ansible-sandbox.md.
    /// </summary>
    public string Sandbox { get; set; } = AnsibleSandbox.Auto;

    /// <summary>Absolute directories, <c>:</c>-separated, that local tasks may write inside the sandbox (the rest of the host is read-only); the data dir stays hidden even inside one.</summary>
    public string? SandboxWritablePaths { get; set; }
}

internal sealed class AnsibleOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<AnsibleOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, AnsibleOptions options)
    {
        static Microsoft.Extensions.Options.ValidateOptionsResult Fail(string message) => Microsoft.Extensions.Options.ValidateOptionsResult.Fail(message);
        if (string.IsNullOrWhiteSpace(options.PlaybookCommand))
            return Fail("Ansible:PlaybookCommand must name the ansible-playbook binary");
        if (string.IsNullOrWhiteSpace(options.InventoryCommand))
            return Fail("Ansible:InventoryCommand must name the ansible-inventory binary");
        if (options.InventoryTimeout < TimeSpan.FromSeconds(1))
            return Fail($"Ansible:InventoryTimeout must be at least 00:00:01, not {options.InventoryTimeout}");
        if (options.PlaybookDirectory is { Length: > 0 } dir && !Directory.Exists(dir))
            return Fail($"Ansible:PlaybookDirectory '{Path.GetFullPath(dir)}' does not exist");
        if (options.RunTimeout < TimeSpan.FromSeconds(1))
            return Fail($"Ansible:RunTimeout must be at least 00:00:01, not {options.RunTimeout}");
        if (options.InterruptGrace < TimeSpan.Zero || options.TerminateGrace < TimeSpan.Zero)
            return Fail("Ansible:InterruptGrace and Ansible:TerminateGrace must not be negative");
        if (options.SshServerAliveInterval < TimeSpan.FromSeconds(1) || options.SshServerAliveCountMax is < 1 or > 100)
            return Fail("Ansible:SshServerAliveInterval must be at least 00:00:01 and Ansible:SshServerAliveCountMax between 1 and 100");
        if (options.ConnectTimeout < TimeSpan.FromSeconds(1))
            return Fail($"Ansible:ConnectTimeout must be at least 00:00:01, not {options.ConnectTimeout}");
        if (options.EventBatchSize is < 1 or > 100_000)
            return Fail($"Ansible:EventBatchSize must be between 1 and 100000, not {options.EventBatchSize}");
        if (options.HostsPerAutoShard is < 1 or > 100_000)
            return Fail($"Ansible:HostsPerAutoShard must be between 1 and 100000, not {options.HostsPerAutoShard}");
        if (options.MaxOutputBytes < 0)
            return Fail("Ansible:MaxOutputBytes must not be negative");
        if (options.Sandbox is not (AnsibleSandbox.Auto or AnsibleSandbox.Bubblewrap or AnsibleSandbox.None))
            return Fail($"Ansible:Sandbox must be auto, bubblewrap or none, not '{options.Sandbox}'");
        foreach (var path in AnsibleSandbox.WritablePaths(options))
        {
            if (!Path.IsPathFullyQualified(path) || path == "/" || !Directory.Exists(path))
                return Fail($"Ansible:SandboxWritablePaths: '{path}' must be an existing absolute directory other than /");
        }
        return Microsoft.Extensions.Options.ValidateOptionsResult.Success;
    }
}
