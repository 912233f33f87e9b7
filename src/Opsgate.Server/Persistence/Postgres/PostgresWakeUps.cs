using System.Data.Common;
using Dapper;
using Npgsql;

namespace Opsgate.Server.Persistence.Postgres;

/// <summary>A NOTIFY on <c>opsgate_jobs</c> with the commit that makes a job claimable wakes idle workers in every replica at once.</summary>
internal sealed partial class PostgresWakeUps(Database database, ILogger<PostgresWakeUps> logger) : IJobWakeUps
{
    private const string NotifySql = "SELECT pg_notify('opsgate_jobs', @id)";

    public Task NotifyAsync(DbConnection connection, DbTransaction tx, string jobId) => connection.ExecuteAsync(NotifySql, new { id = jobId }, tx);

    public Task NotifyLaterAsync(WriteScope write, string jobId) => write.LaterAsync(NotifySql, new { id = jobId });

    public async Task ListenAsync(Action woken, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = (NpgsqlConnection)await database.OpenAsync(ct);
                connection.Notification += (_, _) => woken();
                await using (var listen = new NpgsqlCommand("LISTEN opsgate_jobs", connection))
                    await listen.ExecuteNonQueryAsync(ct);
                try
                {
                    while (!ct.IsCancellationRequested)
                        await connection.WaitAsync(ct);
                }
                finally
                {
                    await UnlistenAsync(connection);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Polling still finds the work; try to listen again shortly.
                LogListenFailed(logger, e);
                // A cancelled wait just ends the loop (the while condition), so it must not throw here.
                await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Pooled connections are reused without a reset (see Database): this one must not go back to the pool still listening.</summary>
    private static async Task UnlistenAsync(NpgsqlConnection connection)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
            await unlisten.ExecuteNonQueryAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or OperationCanceledException)
        {
            // A broken connection is not reused by the pool.
        }
    }

    [LoggerMessage(EventId = 612, Level = LogLevel.Warning, Message = "LISTEN opsgate_jobs failed; relying on polling until it is back")]
    private static partial void LogListenFailed(ILogger logger, Exception exception);
}
