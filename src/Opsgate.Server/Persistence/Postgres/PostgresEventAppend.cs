using System.Data.Common;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;

namespace Opsgate.Server.Persistence.Postgres;

/// <summary>
/// PostgreSQL: a binary COPY for a batch of <see cref="CopyFrom"/> events or more; smaller batches (where COPY's set-up costs
/// more than it saves) as multi-row INSERTs (<see cref="EventInserts"/>), held for the commit when the caller has a write scope.
/// </summary>
internal sealed class PostgresEventAppend : IEventAppend
{
    private const int CopyFrom = 32;

    public async Task InsertAsync(DbConnection connection, DbTransaction tx, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct)
    {
        if (events.Count >= CopyFrom)
        {
            await CopyAsync((NpgsqlConnection)connection, jobId, first, ts, events, ct);
            return;
        }
        await EventInserts.InsertAsync(connection, tx, jobId, first, ts, events, ct);
    }

    /// <summary>A batch of up to <see cref="EventInserts.RowsPerInsert"/> events is held for the commit of <paramref name="write"/> (see <see cref="WriteScope.LaterAsync"/>).</summary>
    public async Task InsertAsync(WriteScope write, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct)
    {
        if (events.Count > EventInserts.RowsPerInsert)
        {
            await InsertAsync(write.Connection, write.Transaction, jobId, first, ts, events, ct);
            return;
        }
        var command = new NpgsqlBatchCommand(EventInserts.Text(events.Count));
        command.Parameters.AddWithValue("j", jobId);
        command.Parameters.AddWithValue("ts", ts);
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            var n = i.ToString(CultureInfo.InvariantCulture);
            command.Parameters.AddWithValue("s" + n, first + i);
            command.Parameters.AddWithValue("t" + n, e.Type);
            command.Parameters.AddWithValue("o" + n, e.StepOrder is { } order ? order : DBNull.Value);
            command.Parameters.AddWithValue("d" + n, (object?)e.DataJson ?? DBNull.Value);
        }
        write.Later(command);
    }

    private static async Task CopyAsync(NpgsqlConnection connection, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct)
    {
        // COPY joins the connection's open transaction: the rows commit (or vanish) with the seq bump.
        await using var copy = await connection.BeginBinaryImportAsync(
            "COPY job_events (job_id, seq, ts, type, step_order, data) FROM STDIN (FORMAT BINARY)", ct);
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(jobId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(first + i, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(ts, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(e.Type, NpgsqlDbType.Text, ct);
            if (e.StepOrder is { } order)
                await copy.WriteAsync(order, NpgsqlDbType.Integer, ct);
            else
                await copy.WriteNullAsync(ct);
            if (e.DataJson is { } data)
                await copy.WriteAsync(data, NpgsqlDbType.Text, ct);
            else
                await copy.WriteNullAsync(ct);
        }
        await copy.CompleteAsync(ct);
    }
}
