namespace Opsgate.Server.Persistence;

/// <summary>
/// SQL conditions that keep a principal to its namespaces, in the database's dialect (the <see cref="ISqlText"/> given). <c>@namespaces</c>
/// is a string array: Dapper expands it into a list on SQLite and passes it as an array to PostgreSQL.
/// </summary>
internal static class ScopeSql
{
    /// <summary>
    /// On <c>jobs</c>: the job's targets are recorded and all lie in <c>@namespaces</c>. A job from before targets were
    /// recorded matches no allowlist.
    /// </summary>
    public static string JobWithinNamespaces(ISqlText sql) =>
        "jobs.scoped = @scopedYes AND NOT EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = jobs.id AND " + sql.NotInList("t.namespace", "namespaces") + ")";

    /// <summary><paramref name="column"/> is one of <c>@namespaces</c>.</summary>
    public static string InNamespaces(ISqlText sql, string column) => sql.InList(column, "namespaces");
}
