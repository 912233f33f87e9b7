using System.Diagnostics;
using Opsgate.Server.Audit;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// The latest verification of the audit chain made by this server for the console, with when it ran and how long it
/// took. Verifying walks every entry (what <c>GET /api/v1/audit/verify</c> does), so the audit page shows the last
/// result and verifies again only when asked or when this server has not verified yet.
/// </summary>
internal sealed class AuditChecks(TimeProvider time)
{
    internal sealed record Check(AuditVerification Result, DateTime At, TimeSpan Took, string By);

    public Check? Last { get; private set; }

    public async Task<Check> RunAsync(AuditLog log, string by, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await log.VerifyAsync(ct);
        var check = new Check(result, time.GetUtcNow().UtcDateTime, Stopwatch.GetElapsedTime(started), by);
        Last = check;
        return check;
    }

    /// <summary>A verification's time in words: milliseconds below a second.</summary>
    public static string Took(TimeSpan took) => took.TotalSeconds < 1
        ? $"{Math.Max(1, (int)Math.Round(took.TotalMilliseconds))} ms"
        : took.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + " s";
}
