namespace Opsgate.Server.Engine;

internal sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>Jobs this process runs at once.</summary>
    public int Workers { get; set; } = 4;

    /// <summary>
    /// Child jobs (the shards of a sharded Ansible run) this process runs at once, on slots of their own: a parent
    /// waiting for its shards holds a Workers slot, never one of these, so parents cannot starve their shards.
    /// </summary>
    public int ChildWorkers { get; set; } = 2;

    /// <summary>How long a claimed job stays invisible to other workers without a heartbeat; a crashed worker's job resumes after this.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often an idle worker looks for work it was not woken for (expired leases; other replicas on SQLite).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A directory of runbooks (*.yaml, *.yml) loaded at start next to the built-in ones; one with a built-in's name replaces it. Default: none.</summary>
    public string? RunbookDirectory { get; set; }
}
