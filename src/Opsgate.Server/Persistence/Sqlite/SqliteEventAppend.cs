using System.Data.Common;

namespace Opsgate.Server.Persistence.Sqlite;

/// <summary>SQLite: every batch as multi-row INSERTs (<see cref="EventInserts"/>) on the writer connection, whose prepared statements are kept.</summary>
internal sealed class SqliteEventAppend : IEventAppend
{
    public Task InsertAsync(DbConnection connection, DbTransaction tx, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct) =>
        EventInserts.InsertAsync(connection, tx, jobId, first, ts, events, ct);

    /// <summary>Runs at once: held statements gain nothing in this process (see <see cref="WriteScope.LaterAsync"/>).</summary>
    public Task InsertAsync(WriteScope write, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct) =>
        EventInserts.InsertAsync(write.Connection, write.Transaction, jobId, first, ts, events, ct);
}
