using Microsoft.Extensions.Options;

namespace Opsgate.Server.Hosting;

/// <summary>
/// Validates settings when the host starts; a failure names the configuration key so the operator
/// knows which <c>OPSGATE_</c> variable or file entry to fix.
/// </summary>
internal sealed class OptionsValidator :
    IValidateOptions<DatabaseOptions>, IValidateOptions<HttpOptions>, IValidateOptions<RateLimitOptions>
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

    private static ValidateOptionsResult Fail(string key, string problem) => ValidateOptionsResult.Fail($"{key} {problem}");
}
