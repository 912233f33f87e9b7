using System.Data.Common;

namespace Opsgate.Server.Persistence.Sqlite;

/// <summary>SQLite has no messages between processes: this process's workers are woken in memory, others find work on their poll tick.</summary>
internal sealed class SqliteWakeUps : IJobWakeUps
{
    public Task NotifyAsync(DbConnection connection, DbTransaction tx, string jobId) => Task.CompletedTask;

    public Task NotifyLaterAsync(WriteScope write, string jobId) => Task.CompletedTask;

    public Task ListenAsync(Action woken, CancellationToken ct) => Task.CompletedTask;
}
