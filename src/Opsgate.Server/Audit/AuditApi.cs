using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Http;

namespace Opsgate.Server.Audit;

internal sealed record AuditEntryResponse(
    long Id, DateTime Ts, string? Actor, string? SourceIp, string Action, string? ResourceKind, string? Namespace,
    string? ResourceName, [property: JsonConverter(typeof(RawJsonConverter))] string? RequestBody, string Status, int? HttpStatus,
    string? ErrorMessage, string? PrincipalId, string? AuthMethod, string? RequestId, bool DryRun, string? JobId,
    string? Cluster, string PrevHash, string Hash)
{
    public static AuditEntryResponse From(AuditEntry e) => new(
        e.Id, e.Ts, e.Actor, e.SourceIp, e.Action, e.ResourceKind, e.Namespace, e.ResourceName, e.RequestBody, e.Status,
        e.HttpStatus, e.ErrorMessage, e.PrincipalId, e.AuthMethod, e.RequestId, e.DryRun, e.JobId, e.Cluster, e.PrevHash, e.Hash);
}

internal sealed record AuditPage(IReadOnlyList<AuditEntryResponse> Items, string? NextCursor);

internal sealed record AuditVerifyResponse(bool Ok, long Entries, long? FirstBadId, string? Reason);

/// <summary>/api/v1/audit: the audit log, newest first, with keyset paging; and chain verification.</summary>
internal static class AuditApi
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 1000;

    public static void MapAuditApi(this WebApplication app)
    {
        var group = app.MapGroup("/api/v1/audit").WithTags("Audit");
        group.MapGet("/", Query).RequireRole(Role.Viewer, AccessScope.Audit).WithSummary(
            "Audit entries, newest first; pass next_cursor back as cursor. A principal with a namespace allowlist sees the entries about its namespaces and the jobs it may see, and its own.");
        group.MapGet("/verify", Verify).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Recompute the hash chain; reports the first entry that does not match.");
    }

    private static async Task<Results<Ok<AuditPage>, ProblemHttpResult>> Query(
        AuditLog log, HttpContext http, CancellationToken ct,
        string? actor = null, string? action = null, string? @namespace = null, string? cluster = null,
        string? since = null, string? until = null, string? cursor = null, int limit = DefaultLimit)
    {
        if (limit is < 1 or > MaxLimit)
            return Problems.Invalid("limit", $"must be between 1 and {MaxLimit}");
        if (!TryTimestamp(since, out var sinceTs))
            return Problems.Invalid("since", "must be an ISO 8601 timestamp such as 2026-11-22T10:00:00Z");
        if (!TryTimestamp(until, out var untilTs))
            return Problems.Invalid("until", "must be an ISO 8601 timestamp such as 2026-11-22T10:00:00Z");
        long? before = null;
        if (cursor is not null)
        {
            if (!long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var b) || b < 1)
                return Problems.Invalid("cursor", "must be a next_cursor value from an earlier page");
            before = b;
        }
        foreach (var (name, value) in new[] { ("actor", actor), ("action", action), ("namespace", @namespace), ("cluster", cluster) })
        {
            if (value is { Length: > 256 })
                return Problems.Invalid(name, "must be at most 256 characters");
            // No actor, action or namespace worth searching for has control characters, and PostgreSQL refuses NUL in a parameter.
            if (value is not null && value.Any(char.IsControl))
                return Problems.Invalid(name, "must not contain control characters");
        }
        var principal = http.Principal()!;
        var rows = await log.QueryAsync(new AuditQuery(actor, action, @namespace, sinceTs, untilTs, before, limit, cluster)
        {
            Reader = new AuditReader(principal.Id, principal.Namespaces),
        }, ct);
        var next = rows.Count == limit ? rows[^1].Id.ToString(CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new AuditPage(rows.Select(AuditEntryResponse.From).ToList(), next));
    }

    private static async Task<Ok<AuditVerifyResponse>> Verify(AuditLog log, CancellationToken ct)
    {
        var result = await log.VerifyAsync(ct);
        return TypedResults.Ok(new AuditVerifyResponse(result.Ok, result.Entries, result.FirstBadId, result.Reason));
    }

    private static bool TryTimestamp(string? value, out DateTime? timestamp)
    {
        timestamp = null;
        if (value is null)
            return true;
        if (!DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            return false;
        timestamp = parsed.UtcDateTime;
        return true;
    }
}

/// <summary>Writes stored JSON text as JSON, not as a quoted string.</summary>
internal sealed class RawJsonConverter : JsonConverter<string?>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var doc = JsonDocument.ParseValue(ref reader);
        return doc.RootElement.GetRawText();
    }

    public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options)
    {
        if (value is null)
            writer.WriteNullValue();
        else
            writer.WriteRawValue(value, skipInputValidation: true);
    }

    public override bool HandleNull => true;
}
