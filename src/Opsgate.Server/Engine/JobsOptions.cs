namespace Opsgate.Server.Engine;

internal sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>Jobs this process runs at once.</summary>
    public int Workers { get; set; } = 16;

    /// <summary>
    /// Child jobs (the shards of a sharded Ansible run) this process runs at once, on slots of their own: a parent
    /// waiting for its shards holds a Workers slot, never one of these, so parents cannot starve their shards.
    /// </summary>
    public int ChildWorkers { get; set; } = 2;

    /// <summary>How long a claimed job stays invisible to other workers without a heartbeat; a crashed worker's job resumes after this.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often an idle worker looks for work it was not woken for (expired leases; other replicas on SQLite).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a running step's start may be held back to be written together with its end (see HeldStepStart): a
    /// quick step then costs one transaction instead of two. 0 writes every start before the step runs.
    /// </summary>
    public TimeSpan StepStartHold { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>A directory of runbooks (*.yaml, *.yml) loaded at start next to the built-in ones; one with a built-in's name replaces it. Default: none.</summary>
    public string? RunbookDirectory { get; set; }

    /// <summary>
    /// How long a finished job's events are kept (a TimeSpan, e.g. <c>30.00:00:00</c>); then they are deleted, while the job,
    /// its steps and its per-host results stay. 0 keeps events forever.
    /// </summary>
    public TimeSpan EventRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often the event pruner looks for jobs past <see cref="EventRetention"/>.</summary>
    public TimeSpan EventPruneInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most events the pruner deletes in one transaction: writers wait for no more than one such batch.</summary>
    public int EventPruneBatch { get; set; } = 5_000;
}
