using Opsgate.Server.Persistence;

namespace Opsgate.Server.Audit;

/// <summary>
/// One audit log row: the fields of apiops' <c>ops_log</c> plus who (principal, auth method), which request,
/// whether it was a dry run, the job it belongs to, and the hash chain. <see cref="Id"/>, <see cref="Ts"/>,
/// <see cref="PrevHash"/> and <see cref="Hash"/> are assigned by <see cref="AuditWriter"/> when it commits.
/// </summary>
internal sealed class AuditEntry : IAuditRow
{
    public long Id { get; set; }
    public DateTime Ts { get; set; }
    public string? Actor { get; set; }
    public string? SourceIp { get; set; }
    public string Action { get; set; } = "";
    public string? ResourceKind { get; set; }
    public string? Namespace { get; set; }
    public string? ResourceName { get; set; }
    /// <summary>JSON text with secrets already redacted.</summary>
    public string? RequestBody { get; set; }
    /// <summary><c>success</c>, <c>error</c> or <c>denied</c>.</summary>
    public string Status { get; set; } = "";
    public int? HttpStatus { get; set; }
    public string? ErrorMessage { get; set; }
    public string? PrincipalId { get; set; }
    public string? AuthMethod { get; set; }
    public string? RequestId { get; set; }
    public bool DryRun { get; set; }
    public string? JobId { get; set; }
    /// <summary>The cluster an operation acted on, if any.</summary>
    public string? Cluster { get; set; }
    public string PrevHash { get; set; } = "";
    public string Hash { get; set; } = "";
}

internal static class AuditStatus
{
    public const string Success = "success";
    public const string Error = "error";
    public const string Denied = "denied";
}
