namespace Opsgate.Server.Engine;

/// <summary>Settings under <c>Jobs:</c>.</summary>
internal sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>A directory of runbooks (*.yaml, *.yml) loaded at start next to the built-in ones; one with a built-in's name replaces it. Default: none.</summary>
    public string? RunbookDirectory { get; set; }
}
