using System.Data.Common;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Engine;

/// <summary>
/// Writes a batch of job events, the hot path of every playbook run: PostgreSQL gets a binary COPY for a batch of
/// any size, SQLite (and small PostgreSQL batches, where COPY's set-up costs more than it saves) multi-row INSERTs
/// of up to <see cref="RowsPerInsert"/> rows, the full-size statement prepared once and executed again per chunk.
/// The job id and timestamp are one parameter per statement, not one per row. Never one statement per event:
/// that cost a round-trip (PostgreSQL) or a statement step (SQLite) per event and capped a run at a few
/// thousand events per second.
/// </summary>
internal static class EventRows
{
    /// <summary>4 parameters per row. Microsoft.Data.Sqlite binds each parameter by name, a linear search in SQLite, so a statement of
    /// 200 rows (800 parameters) inserted half as fast as one of 50 here; 50 rows also stay far below SQLite's 32,766 host parameters and PostgreSQL's 65,535.</summary>
    internal const int RowsPerInsert = 50;

    private const int CopyFrom = 32;

    private static readonly string?[] InsertText = new string?[RowsPerInsert + 1];

    /// <param name="first">The seq of the first event; the others follow without gaps.</param>
    public static async Task InsertAsync(DbConnection connection, DbTransaction tx, string jobId, long first, DateTime ts, IReadOnlyList<NewEvent> events, CancellationToken ct)
    {
        if (connection is NpgsqlConnection pg && events.Count >= CopyFrom)
        {
            await CopyAsync(pg, jobId, first, ts, events, ct);
            return;
        }
        DbCommand? full = null;
        try
        {
            for (var start = 0; start < events.Count; start += RowsPerInsert)
            {
                var rows = Math.Min(RowsPerInsert, events.Count - start);
                if (rows == RowsPerInsert)
                {
                    if (full is null)
                    {
                        full = Command(connection, tx, jobId, ts, rows);
                        await full.PrepareAsync(ct);
                    }
                    Bind(full, first, start, rows, events);
                    await full.ExecuteNonQueryAsync(ct);
                }
                else
                {
                    await using var tail = Command(connection, tx, jobId, ts, rows);
                    Bind(tail, first, start, rows, events);
                    await tail.ExecuteNonQueryAsync(ct);
                }
            }
        }
        finally
        {
            if (full is not null)
                await full.DisposeAsync();
        }
    }

    /// <summary>
    /// As <see cref="InsertAsync(DbConnection, DbTransaction, string, long, DateTime, IReadOnlyList{NewEvent}, CancellationToken)"/>;
    /// on PostgreSQL a batch of up to <see cref="RowsPerInsert"/> events is held for the commit of <paramref name="write"/>
    /// (see <see cref="WriteScope.LaterAsync"/>).
    /// </summary>
    public static async Task InsertAsync(WriteScope write, string jobId, long first, DateTime ts, IReadOnlyList<NewEvent> events, CancellationToken ct)
    {
        if (write.Connection is not NpgsqlConnection || events.Count > RowsPerInsert)
        {
            await InsertAsync(write.Connection, write.Transaction, jobId, first, ts, events, ct);
            return;
        }
        var command = new NpgsqlBatchCommand(InsertText[events.Count] ??= Text(events.Count));
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

    private static DbCommand Command(DbConnection connection, DbTransaction tx, string jobId, DateTime ts, int rows)
    {
        var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = InsertText[rows] ??= Text(rows);
        Add(command, "@j", jobId);
        Add(command, "@ts", ts);
        for (var i = 0; i < rows; i++)
        {
            var n = i.ToString(CultureInfo.InvariantCulture);
            Add(command, "@s" + n, null);
            Add(command, "@t" + n, null);
            Add(command, "@o" + n, null);
            Add(command, "@d" + n, null);
        }
        return command;
    }

    private static void Bind(DbCommand command, long first, int start, int rows, IReadOnlyList<NewEvent> events)
    {
        // Parameters are in the order Command added them: @j, @ts, then four per row.
        var p = command.Parameters;
        for (var i = 0; i < rows; i++)
        {
            var e = events[start + i];
            var at = 2 + i * 4;
            p[at].Value = first + start + i;
            p[at + 1].Value = e.Type;
            p[at + 2].Value = e.StepOrder is { } order ? order : DBNull.Value;
            p[at + 3].Value = (object?)e.DataJson ?? DBNull.Value;
        }
    }

    private static void Add(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    private static string Text(int rows)
    {
        var sql = new System.Text.StringBuilder("INSERT INTO job_events (job_id, seq, ts, type, step_order, data) VALUES ", 32 + rows * 40);
        for (var i = 0; i < rows; i++)
        {
            if (i > 0)
                sql.Append(',');
            sql.Append(CultureInfo.InvariantCulture, $"(@j,@s{i},@ts,@t{i},@o{i},@d{i})");
        }
        return sql.ToString();
    }

    private static async Task CopyAsync(NpgsqlConnection connection, string jobId, long first, DateTime ts, IReadOnlyList<NewEvent> events, CancellationToken ct)
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
