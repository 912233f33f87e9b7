using Dapper;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>
/// Which job that has not finished yet names a stored object (an inventory, a project, a credential) in its parameters:
/// such an object is not deleted under the job, which would fail when it gets to it. Only the job's own parameters are
/// looked at (as the built-in ansible-playbook runbook takes them), not names a runbook writes into its steps.
/// </summary>
internal static class UnfinishedJobs
{
    private const string Unfinished = "status IN (@pending, @waiting, @running)";

    /// <returns>
    /// The id of the first job that is pending, waiting for approval or running whose parameter <paramref name="parameter"/>
    /// (a constant of the caller's, a JSON key) is a string equal to one of <paramref name="names"/> (an object's id or name), or null.
    /// Read in the caller's write transaction; a job submitted at that very moment may still be accepted (submission checks
    /// the names before its own transaction) and then fails when it runs, saying what is missing.
    /// </returns>
    public static Task<string?> UsingAsync(WriteScope write, ISqlText dialect, string parameter, params string[] names)
    {
        var sql = $"SELECT id FROM jobs WHERE {Unfinished} AND {dialect.JsonIsString("params", parameter)} AND {dialect.InList(dialect.JsonText("params", parameter), "names")} ORDER BY id LIMIT 1";
        return write.Connection.QueryFirstOrDefaultAsync<string?>(sql, new
        {
            pending = JobStatus.Pending, waiting = JobStatus.WaitingApproval, running = JobStatus.Running, names,
        }, write.Transaction);
    }
}
