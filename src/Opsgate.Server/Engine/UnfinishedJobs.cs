using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>
/// Which job that has not finished yet names a stored object (an inventory, a project, a credential) in its parameters:
/// such an object is not deleted under the job, which would fail when it gets to it.
/// </summary>
internal static class UnfinishedJobs
{
    /// <returns>
    /// The id of the first job that is pending, waiting for approval or running whose parameter <paramref name="parameter"/>
    /// is one of <paramref name="names"/> (an object's id or name), or null. Read in the caller's write transaction, so on
    /// SQLite no job can be submitted between the check and the delete.
    /// </returns>
    public static async Task<string?> UsingAsync(WriteScope write, string parameter, params string[] names)
    {
        var unfinished = await write.Connection.QueryAsync<JobParams>(
            "SELECT id, params FROM jobs WHERE status IN (@pending, @waiting, @running) ORDER BY id",
            new { pending = JobStatus.Pending, waiting = JobStatus.WaitingApproval, running = JobStatus.Running }, write.Transaction);
        foreach (var job in unfinished)
        {
            if ((JsonNode.Parse(job.Params) as JsonObject)?[parameter] is JsonValue value && value.TryGetValue<string>(out var used) && names.Contains(used))
                return job.Id;
        }
        return null;
    }

    private sealed class JobParams
    {
        public string Id { get; set; } = "";
        public string Params { get; set; } = "{}";
    }
}
