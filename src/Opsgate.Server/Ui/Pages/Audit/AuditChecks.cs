using System.Diagnostics;
using Opsgate.Server.Audit;

namespace Opsgate.Server.Ui.Pages;

/// <summary>
/// The latest verification of the audit chain made by this server for the console, with when it ran and how long it
/// took. Verifying walks every entry (what <c>GET /api/v1/audit/verify</c> does: about 2.6 s for 100,000 entries on
/// SQLite here), so the audit page shows the last result and verifies again only when asked ("Verify now"), or on the
/// first visit after start if it takes less than <see cref="FirstVisitBudget"/>.
/// </summary>
internal sealed class AuditChecks(TimeProvider time)
{
    internal sealed record Check(AuditVerification Result, DateTime At, TimeSpan Took, string By);

    /// <summary>How long the first visit waits for a verification before showing the page without one.</summary>
    public static readonly TimeSpan FirstVisitBudget = TimeSpan.FromSeconds(1);

    public Check? Last { get; private set; }

    /// <summary>A verification for the first visit, or null when it takes longer than <see cref="FirstVisitBudget"/>.</summary>
    public async Task<Check?> TryFirstAsync(AuditLog log, string by, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(FirstVisitBudget, time);
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            return await RunAsync(log, by, budget.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return null;
        }
    }

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
