using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Auth;

internal sealed record CreateApiKeyRequest(string Name, string Role, IReadOnlyList<string>? Namespaces = null, DateTime? ExpiresAt = null);

internal sealed record ApiKeyResponse(
    string Id, string Name, string Role, IReadOnlyList<string>? Namespaces, string Prefix,
    DateTime CreatedAt, string CreatedBy, DateTime? ExpiresAt, DateTime? RevokedAt)
{
    public static ApiKeyResponse From(ApiKeyRow row) =>
        new(row.Id, row.Name, row.Role, row.NamespaceList, row.KeyPrefix, row.CreatedAt, row.CreatedBy, row.ExpiresAt, row.RevokedAt);
}

/// <summary>The key itself appears in this one response and nowhere else, ever.</summary>
internal sealed record CreatedApiKeyResponse(
    string Id, string Name, string Role, IReadOnlyList<string>? Namespaces, string Prefix,
    DateTime CreatedAt, string CreatedBy, DateTime? ExpiresAt, string Key);

internal sealed record ApiKeyList(IReadOnlyList<ApiKeyResponse> Items);

/// <summary>/api/v1/apikeys: create (key shown once), list (never the key), revoke. Admin only.</summary>
internal static partial class ApiKeysApi
{
    public static void MapApiKeysApi(this WebApplication app)
    {
        var group = app.MapGroup("/api/v1/apikeys").WithTags("API keys").RequireRole(Role.Admin, AccessScope.Global);
        group.MapPost("/", Create).Audited("apikey.create", "apikey")
            .WithSummary("Create an API key; the key is returned once in this response.");
        group.MapGet("/", List).WithSummary("List API keys (never the keys themselves).");
        group.MapDelete("/{id}", Revoke).Audited("apikey.revoke", "apikey")
            .WithSummary("Revoke an API key; it stops working at once.");
    }

    private static async Task<Results<Created<CreatedApiKeyResponse>, ProblemHttpResult>> Create(
        CreateApiKeyRequest request, HttpContext context, ApiKeyStore keys, TimeProvider time)
    {
        context.SetAuditBody(request);
        context.Audit().ResourceName = request.Name;
        if (Check(request, time.GetUtcNow().UtcDateTime) is { } problem)
            return Problems.Invalid(problem.Field, problem.Problem);
        var role = Roles.ParseOrNull(request.Role)!.Value;

        var principal = context.Principal()!;
        var (row, key) = await keys.CreateAsync(request.Name, role, request.Namespaces?.Distinct(StringComparer.Ordinal).ToList(), request.ExpiresAt, principal.Name, context.RequestAborted);
        context.Audit().ResourceName = row.Id;
        return TypedResults.Created($"/api/v1/apikeys/{row.Id}",
            new CreatedApiKeyResponse(row.Id, row.Name, row.Role, row.NamespaceList, row.KeyPrefix, row.CreatedAt, row.CreatedBy, row.ExpiresAt, key));
    }

    /// <summary>What is wrong with a request for a new key, as the field and the problem; null when nothing is.</summary>
    public static (string Field, string Problem)? Check(CreateApiKeyRequest request, DateTime now)
    {
        if (!ApiKeyNames.IsValid(request.Name))
            return ("name", "must be " + ApiKeyNames.Rule);
        if (!Roles.TryParse(request.Role, out _))
            return ("role", $"must be one of {Roles.AllNames}, not '{request.Role}'");
        if (request.Namespaces is { } namespaces)
        {
            if (namespaces.Count == 0)
                return ("namespaces", "must hold at least one namespace, or be left out for no allowlist");
            for (var i = 0; i < namespaces.Count; i++)
            {
                if (!Validate.IsDnsLabel(namespaces[i]))
                    return ($"namespaces[{i}]", Validate.DnsLabelRule);
            }
        }
        if (request.ExpiresAt is { } expires && expires.ToUniversalTime() <= now)
            return ("expires_at", "must be in the future");
        return null;
    }

    /// <summary>Revokes a key: the API's answer for each outcome, which the console shows too.</summary>
    public static (int Status, string? Problem) RevokeOutcomeOf(string id, RevokeOutcome outcome) => outcome switch
    {
        RevokeOutcome.Revoked or RevokeOutcome.AlreadyRevoked => (StatusCodes.Status204NoContent, null),
        RevokeOutcome.LastAdmin => (StatusCodes.Status409Conflict, $"{id} is the last active admin key; create another admin key before revoking it"),
        _ => (StatusCodes.Status404NotFound, $"API key {id} does not exist"),
    };

    private static async Task<Ok<ApiKeyList>> List(ApiKeyStore keys, CancellationToken ct, [FromQuery(Name = "include_revoked")] bool includeRevoked = false)
    {
        var rows = await keys.ListAsync(includeRevoked, ct);
        return TypedResults.Ok(new ApiKeyList(rows.Select(ApiKeyResponse.From).ToList()));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Revoke(string id, HttpContext context, ApiKeyStore keys)
    {
        context.Audit().ResourceName = id.Length <= 64 ? id : id[..64];
        if (!KeyId().IsMatch(id))
            return Problems.Invalid("id", "must be an API key id such as ak_3kq9x2mf7pzt");
        return RevokeOutcomeOf(id, await keys.RevokeAsync(id, context.RequestAborted)) switch
        {
            (StatusCodes.Status204NoContent, _) => TypedResults.NoContent(),
            (StatusCodes.Status409Conflict, var problem) => Problems.Conflict(problem!),
            (_, var problem) => Problems.NotFound(problem!),
        };
    }

    [GeneratedRegex("^ak_[a-z0-9]{1,40}$")]
    public static partial Regex KeyId();
}
