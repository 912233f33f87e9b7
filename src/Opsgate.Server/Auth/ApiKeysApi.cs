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
        if (!ApiKeyNames.IsValid(request.Name))
            return Problems.Invalid("name", "must be " + ApiKeyNames.Rule);
        if (!Roles.TryParse(request.Role, out var role))
            return Problems.Invalid("role", $"must be one of {Roles.AllNames}, not '{request.Role}'");
        if (request.Namespaces is { } namespaces)
        {
            if (namespaces.Count == 0)
                return Problems.Invalid("namespaces", "must hold at least one namespace, or be left out for no allowlist");
            for (var i = 0; i < namespaces.Count; i++)
            {
                if (!Validate.IsDnsLabel(namespaces[i]))
                    return Problems.Invalid($"namespaces[{i}]", Validate.DnsLabelRule);
            }
        }
        if (request.ExpiresAt is { } expires && expires.ToUniversalTime() <= time.GetUtcNow().UtcDateTime)
            return Problems.Invalid("expires_at", "must be in the future");

        var principal = context.Principal()!;
        var (row, key) = await keys.CreateAsync(request.Name, role.Value, request.Namespaces?.Distinct(StringComparer.Ordinal).ToList(), request.ExpiresAt, principal.Name, context.RequestAborted);
        context.Audit().ResourceName = row.Id;
        return TypedResults.Created($"/api/v1/apikeys/{row.Id}",
            new CreatedApiKeyResponse(row.Id, row.Name, row.Role, row.NamespaceList, row.KeyPrefix, row.CreatedAt, row.CreatedBy, row.ExpiresAt, key));
    }

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
        return await keys.RevokeAsync(id, context.RequestAborted) switch
        {
            RevokeOutcome.Revoked or RevokeOutcome.AlreadyRevoked => TypedResults.NoContent(),
            RevokeOutcome.LastAdmin => Problems.Conflict($"{id} is the last active admin key; create another admin key before revoking it"),
            _ => Problems.NotFound($"API key {id} does not exist"),
        };
    }

    [GeneratedRegex("^ak_[a-z0-9]{1,40}$")]
    private static partial Regex KeyId();
}
