namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>A clock the test moves by hand; timestamps (expiry, audit ts) follow it.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
