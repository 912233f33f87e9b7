namespace Opsgate.Server.Observability;

/// <summary>
/// A line of <c>/health</c> that a feature reports itself: its name and its state (<c>healthy</c>, <c>disabled: why</c>,
/// <c>unhealthy: why</c>). Features register theirs in DI, so the health report needs to know none of them.
/// </summary>
internal interface IHealthPart
{
    string Name { get; }

    string State { get; }
}
