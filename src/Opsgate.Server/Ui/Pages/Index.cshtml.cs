using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Auth;
using Opsgate.Server.Kubernetes;
using Opsgate.Server.Engine;

namespace Opsgate.Server.Ui.Pages;

/// <summary>What needs attention now: clusters, jobs running, queued and waiting for approval, recent failures, 24 h counts.</summary>
internal sealed class DashboardModel(ClusterRegistry registry, ClusterMonitor monitor, JobStore store, JobSubmission submission, DashboardQuery counts) : PageModel
{
    internal sealed record ClusterLine(string Name, ClusterHealth Health);
    internal sealed record JobLine(JobRow Job, string? Note);
    internal sealed record JobListing(string Id, string Title, string Status, IReadOnlyList<JobLine> Jobs)
    {
        public string Plural => UiFormat.Words(Status == JobStatus.Pending ? "queued" : Status) + " jobs";
    }

    public static readonly (string Label, string Status)[] Counted =
    [
        ("Succeeded", JobStatus.Succeeded), ("Failed", JobStatus.Failed), ("Running", JobStatus.Running),
        ("Queued", JobStatus.Pending), ("Waiting for approval", JobStatus.WaitingApproval), ("Cancelled", JobStatus.Cancelled),
    ];

    private const int Shown = 8;
    private IReadOnlyDictionary<string, long> _counts = new Dictionary<string, long>();

    public IReadOnlyList<ClusterLine> Clusters { get; private set; } = [];
    public IReadOnlyList<JobListing> Lists { get; private set; } = [];

    public long Count(string status) => _counts.GetValueOrDefault(status);

    public async Task OnGetAsync(CancellationToken ct)
    {
        var scope = HttpContext.Principal()!.Namespaces;
        Clusters = [.. (await registry.ListAsync(ct)).Select(c => new ClusterLine(c.Name, monitor.Health(c.Name)))];
        _counts = await counts.CountsSinceAsync(TimeSpan.FromHours(24), scope, ct);
        Lists =
        [
            await ListAsync("running", "Running", JobStatus.Running, scope, withReason: false, ct),
            await ListAsync("queued", "Queued", JobStatus.Pending, scope, withReason: true, ct),
            await ListAsync("approval", "Waiting for approval", JobStatus.WaitingApproval, scope, withReason: false, ct),
            await ListAsync("failures", "Recent failures", JobStatus.Failed, scope, withReason: false, ct),
        ];
    }

    private async Task<JobListing> ListAsync(string id, string title, string status, IReadOnlyList<string>? scope, bool withReason, CancellationToken ct)
    {
        var rows = await store.ListAsync(status, null, null, Shown, scope, ct);
        var lines = new List<JobLine>(rows.Count);
        foreach (var row in rows)
            lines.Add(new JobLine(row, withReason ? await submission.PendingReasonAsync(row, ct) : status == JobStatus.Failed ? row.Error : null));
        return new JobListing(id, title, status, lines);
    }
}
