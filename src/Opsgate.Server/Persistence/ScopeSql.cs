namespace Opsgate.Server.Persistence;

/// <summary>
/// SQL conditions that keep a principal to its namespaces, in the database's dialect. <c>@namespaces</c> is a string
/// array: Dapper expands it into a list on SQLite and passes it as an array to PostgreSQL.
/// </summary>
internal static class ScopeSql
{
    /// <summary>
    /// On <c>jobs</c>: the job's targets are recorded and all lie in <c>@namespaces</c>. A job from before targets were
    /// recorded matches no allowlist.
    /// </summary>
    public static string JobWithinNamespaces(DbDialect dialect) =>
        "jobs.scoped = @scopedYes AND NOT EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = jobs.id AND " +
        (dialect == DbDialect.Postgres ? "t.namespace <> ALL(@namespaces)" : "t.namespace NOT IN @namespaces") + ")";

    /// <summary><paramref name="column"/> is one of <c>@namespaces</c>.</summary>
    public static string InNamespaces(DbDialect dialect, string column) =>
        dialect == DbDialect.Postgres ? $"{column} = ANY(@namespaces)" : $"{column} IN @namespaces";
}
