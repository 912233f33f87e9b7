using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Auth;

internal static class AuthExtensions
{
    /// <summary>The default scheme: picks the API key, OIDC or (see Ui) the session cookie for each request.</summary>
    public const string PolicyScheme = "Opsgate";
    public const string OidcScheme = "Oidc";

    public static void AddOpsgateAuth(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<BootstrapKey>();
        services.AddStartupTask((sp, ct) => sp.GetRequiredService<BootstrapKey>().EnsureAsync(ct));
        // Registered after the audit writer (AddAudit comes first) so it stops before it: its last summaries are written on the way out.
        services.AddSingleton<RefusalTally>();
        services.AddHostedService(sp => sp.GetRequiredService<RefusalTally>());

        var oidc = new OidcOptions();
        builder.Configuration.GetSection("Auth:Oidc").Bind(oidc);
        var oidcEnabled = !string.IsNullOrWhiteSpace(oidc.Authority);

        var authentication = services.AddAuthentication(PolicyScheme)
            .AddPolicyScheme(PolicyScheme, "API key or OIDC token", o => o.ForwardDefaultSelector = context =>
                oidcEnabled && ApiKeyAuthenticationHandler.LooksLikeJwt(context.Request) ? OidcScheme : ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        if (oidcEnabled)
            authentication.AddJwtBearer(OidcScheme, o => ConfigureOidc(o, oidc));

        services.AddAuthorization(o =>
        {
            foreach (var role in Enum.GetValues<Role>())
                o.AddPolicy(Roles.Policy(role), p => p.RequireAuthenticatedUser().AddRequirements(new RoleRequirement(role)));
            // Everything needs at least a viewer unless it says AllowAnonymous.
            o.FallbackPolicy = o.GetPolicy(Roles.Policy(Role.Viewer));
        });
        services.AddSingleton<IAuthorizationHandler, RoleRequirementHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, AuditedDenials>();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitOptions>, RefusalTally>((o, limits, refusals) => ConfigureRateLimits(o, limits.Value, refusals));
    }

    public static void MapAuth(this WebApplication app) => app.MapApiKeysApi();

    public static void UseOpsgateAuth(this WebApplication app)
    {
        app.UseAuthentication();
        // After authentication, so the limit is per principal; before authorization, so floods are cheap to refuse.
        app.UseRateLimiter();
        app.UseAuthorization();
    }

    private static void ConfigureOidc(JwtBearerOptions o, OidcOptions oidc)
    {
        o.Authority = oidc.Authority;
        o.Audience = oidc.Audience;
        o.RequireHttpsMetadata = oidc.RequireHttpsMetadata;
        // The default (60 s) would hold every request that long while a provider hangs before its keys are cached.
        o.BackchannelTimeout = TimeSpan.FromSeconds(10);
        o.MapInboundClaims = false;
        o.TokenValidationParameters.ValidAudience = oidc.Audience;
        o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
        o.Events = new JwtBearerEvents
        {
            OnMessageReceived = async context =>
            {
                // Left to the token handler, an unreachable provider shows up as "untrusted issuer" on every
                // token. Once fetched, the document and keys are cached, so this costs nothing per request.
                try
                {
                    await context.Options.ConfigurationManager!.GetConfigurationAsync(context.HttpContext.RequestAborted);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    context.Fail(new OidcProviderUnavailableException(
                        $"tokens cannot be checked now: the OIDC discovery document or signing keys could not be fetched from {context.Options.MetadataAddress}"));
                }
            },
            OnTokenValidated = context =>
            {
                if (context.SecurityToken is not JsonWebToken token)
                    context.Fail("unsupported token format");
                else if (OidcRoleMapping.ToPrincipal(token.EncodedPayload, oidc) is { } principal)
                    context.Principal = principal.ToClaimsPrincipal();
                else
                    context.Fail("the token has no 'sub' claim, so it does not say who is calling");
                return Task.CompletedTask;
            },
            OnAuthenticationFailed = context =>
            {
                // Replace IdentityModel's IDX messages (with PII markers) by plain words for the 401.
                context.Fail(context.Exception switch
                {
                    SecurityTokenExpiredException => "the token expired",
                    SecurityTokenNotYetValidException => "the token is not valid yet",
                    SecurityTokenInvalidIssuerException => "the token was issued by an issuer this server does not trust",
                    SecurityTokenInvalidAudienceException => $"the token is not meant for this server (audience must be '{oidc.Audience}')",
                    SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature is not valid",
                    _ => "the token is not valid",
                });
                return Task.CompletedTask;
            },
        };
    }

    private static void ConfigureRateLimits(RateLimiterOptions o, RateLimitOptions limits, RefusalTally refusals)
    {
        // Without a limiter the middleware passes every request straight on.
        if (!limits.Enabled)
            return;
        o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
        {
            var path = context.Request.Path;
            if (path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics"))
                return RateLimitPartition.GetNoLimiter("unlimited");
            var key = context.Principal()?.Id ?? "ip:" + context.Connection.RemoteIpAddress;
            return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = limits.Burst,
                TokensPerPeriod = limits.PermitsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            });
        });
        o.OnRejected = async (context, _) =>
        {
            var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
            var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
            var http = context.HttpContext;
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            var detail = $"rate limit of {limits.PermitsPerSecond} requests/s (burst {limits.Burst}) exceeded; retry after {seconds} s";
            await refusals.AuditAsync(http, RefusalKind.RateLimited, StatusCodes.Status429TooManyRequests, detail);
            await Problems.WriteAsync(http, StatusCodes.Status429TooManyRequests, "Too many requests", detail);
        };
    }
}

internal sealed record RoleRequirement(Role Minimum) : IAuthorizationRequirement;

internal sealed class RoleRequirementHandler : AuthorizationHandler<RoleRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, RoleRequirement requirement)
    {
        var principal = context.Resource is HttpContext http && ReferenceEquals(http.User, context.User) ? http.Principal() : Principal.From(context.User);
        if (principal?.Role >= requirement.Minimum)
        {
            context.Succeed(requirement);
        }
        else if (principal is not null)
        {
            var has = principal.Role is { } r
                ? $"{principal.Name} has role {r.Name()}"
                : principal.AuthMethod == "oidc"
                    ? $"{principal.Name}'s token carries no Opsgate role in the configured role claim"
                    : $"{principal.Name} has no role";
            context.Fail(new AuthorizationFailureReason(this, $"this requires role {requirement.Minimum.Name()} or higher; {has}"));
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// Every 403 (and 503) is written to the audit log before the problem+json answer goes out; 401s, which anyone can
/// cause, go through <see cref="RefusalTally"/>: the first of an address's minute is written the same way, the rest
/// summed up.
/// </summary>
internal sealed class AuditedDenials(RefusalTally refusals, IOptions<HttpOptions> limits) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Succeeded)
        {
            await _default.HandleAsync(next, context, policy, result);
            return;
        }
        if (context.GetEndpoint() is null)
        {
            await AnswerNoRouteAsync(context);
            return;
        }
        string detail;
        int status;
        if (result.Challenged)
        {
            var failure = context.Features.Get<IAuthenticateResultFeature>()?.AuthenticateResult?.Failure
                ?? (await context.AuthenticateAsync()).Failure;
            detail = failure?.Message ?? "authentication required: send an API key as X-API-Key (or Authorization: Bearer), or an OIDC token";
            // Not the caller's fault: a 401 would send them to log in again for nothing.
            if (failure is OidcProviderUnavailableException)
            {
                status = StatusCodes.Status503ServiceUnavailable;
            }
            else
            {
                status = StatusCodes.Status401Unauthorized;
                await context.ChallengeAsync();
            }
        }
        else
        {
            status = StatusCodes.Status403Forbidden;
            var reasons = result.AuthorizationFailure?.FailureReasons.Select(r => r.Message).ToList();
            detail = reasons is { Count: > 0 } ? string.Join("; ", reasons) : "you are not allowed to do this";
        }
        if (status == StatusCodes.Status401Unauthorized)
            await refusals.AuditAsync(context, RefusalKind.Unauthenticated, status, detail);
        else
            await context.TryWriteAuditAsync(AuditStatus.Denied, status, detail);
        var title = status switch { 401 => "Unauthorized", 403 => "Forbidden", _ => "Service unavailable" };
        await Problems.WriteAsync(context, status, title, detail);
    }

    /// <summary>
    /// A path no route matches is a 404 whoever asks: the fallback policy would answer 401 to a caller without a key
    /// and hide a mistyped path, while the routes are no secret (/openapi/v1.json lists them). Anyone can send these,
    /// so a mutating one from an unidentified caller is tallied like a 401 rather than written one by one.
    /// </summary>
    private async Task AnswerNoRouteAsync(HttpContext context)
    {
        const int status = StatusCodes.Status404NotFound;
        var detail = Problems.DescribeStatus(context, status, limits.Value)!;
        if (context.Request.IsMutating())
        {
            if (context.Principal() is null)
                await refusals.AuditAsync(context, RefusalKind.Unauthenticated, status, detail);
            else
                await context.TryWriteAuditAsync(AuditStatus.Error, status, detail);
        }
        await Problems.WriteAsync(context, status, "Not Found", detail);
    }
}

/// <summary>The identity provider could not be asked for its keys, so a token could be neither accepted nor refused.</summary>
internal sealed class OidcProviderUnavailableException(string message) : Exception(message);
