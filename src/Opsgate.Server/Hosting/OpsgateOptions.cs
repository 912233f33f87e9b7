namespace Opsgate.Server.Hosting;

/// <summary>Top-level settings. Every option is listed with its default in docs/configuration.md (DocsCoverageTests checks it).</summary>
internal sealed class OpsgateOptions
{
    /// <summary>Where the embedded database, the secret key file and run directories live.</summary>
    public string DataDir { get; set; } = "data";
}

internal sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary><c>sqlite</c> (default, embedded) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>Empty means <c>Data Source={DataDir}/opsgate.db</c> for SQLite; required for PostgreSQL.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>PostgreSQL only: write transactions this process runs at once (SQLite always runs one); more wait their turn, the job engine's first.</summary>
    public int PostgresWriters { get; set; } = 8;
}

internal sealed class HttpOptions
{
    public const string Section = "Http";

    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
}

internal sealed class RateLimitOptions
{
    public const string Section = "RateLimit";

    public bool Enabled { get; set; } = true;

    /// <summary>Sustained requests per second allowed to one principal (or one IP when unauthenticated).</summary>
    public int PermitsPerSecond { get; set; } = 100;

    /// <summary>Requests one principal may send at once above the sustained rate.</summary>
    public int Burst { get; set; } = 200;
}
