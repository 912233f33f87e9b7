using Dapper;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;
using Opsgate.Server.Observability;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Api;

internal sealed record LiveResponse(string Status);

internal sealed record ReadyResponse(string Status, string Database, DateTime Timestamp);

internal sealed record HealthResponse(string Status, IReadOnlyDictionary<string, string> Services, DateTime Timestamp);

/// <summary>Liveness and readiness for orchestrators (no auth) and a per-dependency report (authenticated).</summary>
internal static class HealthApi
{
    public static void MapHealthApi(this WebApplication app)
    {
        app.MapGet("/health/live", () => TypedResults.Ok(new LiveResponse("live"))).Anonymous().WithTags("Health")
            .WithSummary("The process is up.");
        app.MapGet("/health/ready", Ready).Anonymous().WithTags("Health")
            .WithSummary("The database is reachable and migrated: 200, else 503.");
        // pxbackup-ansible-runner's readiness route, so its probes and scripts keep working (its GET /health needs a token, as Opsgate's does).
        app.MapGet("/ready", Ready).Anonymous().WithTags("Health")
            .WithSummary("As /health/ready (pxbackup-ansible-runner's route).");
        app.MapGet("/health", Health).RequireRole(Role.Viewer, AccessScope.Global).WithTags("Health")
            .WithSummary("Health of each dependency.");
    }

    private static async Task<Results<Ok<ReadyResponse>, JsonHttpResult<ReadyResponse>>> Ready(Database database, Migrator migrator, TimeProvider time, CancellationToken ct)
    {
        var state = await DatabaseStateAsync(database, migrator, ct);
        var response = new ReadyResponse(state == "connected" ? "ready" : "not ready", state, time.GetUtcNow().UtcDateTime);
        return state == "connected"
            ? TypedResults.Ok(response)
            : TypedResults.Json(response, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task<Results<Ok<HealthResponse>, JsonHttpResult<HealthResponse>>> Health(
        Database database, Migrator migrator, AuditWriter audit, IEnumerable<IHealthPart> parts, IServiceProvider services, IOptions<AuthOptions> auth, TimeProvider time,
        CancellationToken ct)
    {
        var db = await DatabaseStateAsync(database, migrator, ct);
        var report = new Dictionary<string, string>
        {
            ["database"] = db == "connected" ? "healthy" : $"unhealthy: {db}",
            ["audit_log"] = audit.IsRunning ? "healthy" : "unhealthy: writer stopped",
            ["oidc"] = await OidcStateAsync(services, auth.Value, ct),
        };
        foreach (var part in parts)
            report[part.Name] = part.State;
        // "disabled: ..." says what is off and why (runs that are not sandboxed) without failing the check.
        var healthy = report.Values.All(v => v is "healthy" or "disabled" || v.StartsWith("healthy: ", StringComparison.Ordinal) || v.StartsWith("disabled: ", StringComparison.Ordinal));
        var response = new HealthResponse(healthy ? "healthy" : "unhealthy", report, time.GetUtcNow().UtcDateTime);
        return healthy ? TypedResults.Ok(response) : TypedResults.Json(response, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task<string> DatabaseStateAsync(Database database, Migrator migrator, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await using var connection = await database.OpenAsync(timeout.Token);
            await connection.ExecuteScalarAsync<int>(new CommandDefinition("SELECT 1", cancellationToken: timeout.Token));
            return await migrator.IsUpToDateAsync(connection) ? "connected" : "migrations pending";
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return "unreachable";
        }
    }

    private static async Task<string> OidcStateAsync(IServiceProvider services, AuthOptions auth, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(auth.Oidc.Authority))
            return "disabled";
        try
        {
            var options = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(AuthExtensions.OidcScheme);
            if (options.MetadataAddress is not { Length: > 0 } metadata || options.Backchannel is null)
                return "unhealthy: not configured";
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            // Fetched afresh, not through options.ConfigurationManager: that caches the document and keys for
            // up to 12 hours, so it would keep reporting a provider that went down as healthy.
            var retriever = new HttpDocumentRetriever(options.Backchannel) { RequireHttps = options.RequireHttpsMetadata };
            var configuration = await OpenIdConnectConfigurationRetriever.GetAsync(metadata, retriever, timeout.Token);
            return configuration.SigningKeys.Count > 0 ? "healthy" : "unhealthy: the JWKS has no signing keys";
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return "unhealthy: discovery document or JWKS unreachable";
        }
    }
}
