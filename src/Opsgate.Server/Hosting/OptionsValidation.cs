using Microsoft.Extensions.Options;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Hosting;

/// <summary>
/// Validates settings when the host starts; a failure names the configuration key so the operator
/// knows which <c>OPSGATE_</c> variable or file entry to fix.
/// </summary>
internal sealed class OptionsValidator :
    IValidateOptions<DatabaseOptions>, IValidateOptions<HttpOptions>, IValidateOptions<RateLimitOptions>,
    IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, DatabaseOptions options)
    {
        var provider = options.Provider.ToLowerInvariant();
        if (provider is not ("sqlite" or "postgres"))
            return Fail("Database:Provider", $"must be 'sqlite' or 'postgres', not '{options.Provider}'");
        if (provider == "postgres" && string.IsNullOrWhiteSpace(options.ConnectionString))
            return Fail("Database:ConnectionString", "is required when Database:Provider is 'postgres'");
        if (options.PostgresWriters is < 1 or > 1024)
            return Fail("Database:PostgresWriters", $"must be between 1 and 1024, not {options.PostgresWriters}");
        return ValidateOptionsResult.Success;
    }

    public ValidateOptionsResult Validate(string? name, HttpOptions options) =>
        options.MaxRequestBodyBytes is < 1024 or > 1024L * 1024 * 1024
            ? Fail("Http:MaxRequestBodyBytes", $"must be between 1024 and 1073741824, not {options.MaxRequestBodyBytes}")
            : ValidateOptionsResult.Success;

    public ValidateOptionsResult Validate(string? name, RateLimitOptions options)
    {
        if (options.PermitsPerSecond < 1)
            return Fail("RateLimit:PermitsPerSecond", $"must be at least 1, not {options.PermitsPerSecond}");
        if (options.Burst < 1)
            return Fail("RateLimit:Burst", $"must be at least 1, not {options.Burst}");
        return ValidateOptionsResult.Success;
    }

    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        if (options.BootstrapAdminKey is { } key && (key.Length < 16 || key.Any(char.IsWhiteSpace)))
            return Fail("Auth:BootstrapAdminKey", "must be at least 16 characters without whitespace");
        if (options.KeyCacheTtl < TimeSpan.Zero || options.KeyCacheTtl > TimeSpan.FromMinutes(10))
            return Fail("Auth:KeyCacheTtl", $"must be between 00:00:00 and 00:10:00, not {options.KeyCacheTtl}");
        var oidc = options.Oidc;
        if (oidc.Authority is { Length: > 0 } authority)
        {
            if (!Uri.TryCreate(authority, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                return Fail("Auth:Oidc:Authority", $"must be an absolute http(s) URL, not '{authority}'");
            // JwtBearer refuses plain-http metadata only when the first token arrives, as a 500 on every request.
            if (uri.Scheme == "http" && oidc.RequireHttpsMetadata)
                return Fail("Auth:Oidc:Authority", $"must use https, not '{authority}' (set Auth:Oidc:RequireHttpsMetadata=false only for local testing)");
            if (string.IsNullOrWhiteSpace(oidc.Audience))
                return Fail("Auth:Oidc:Audience", "is required when Auth:Oidc:Authority is set");
            if (string.IsNullOrWhiteSpace(oidc.RoleClaim))
                return Fail("Auth:Oidc:RoleClaim", "must name the claim that carries roles (e.g. realm_access.roles or groups)");
            foreach (var (group, role) in oidc.RoleMap)
            {
                if (!Roles.TryParse(role, out _))
                    return Fail($"Auth:Oidc:RoleMap:{group}", $"must be one of {Roles.AllNames}, not '{role}'");
            }
        }
        return ValidateOptionsResult.Success;
    }

    private static ValidateOptionsResult Fail(string key, string problem) => ValidateOptionsResult.Fail($"{key} {problem}");
}
