using System.Data.Common;
using System.Globalization;

namespace Opsgate.Server.Persistence;

/// <summary>
/// Job events as multi-row INSERTs of up to <see cref="RowsPerInsert"/> rows, the full-size statement prepared once and
/// executed again per chunk; the job id and timestamp are one parameter per statement, not one per row. SQLite's way for
/// every batch, PostgreSQL's for batches too small for COPY. Never one statement per event: that cost a round-trip
/// (PostgreSQL) or a statement step (SQLite) per event and capped a run at a few thousand events per second.
/// </summary>
internal static class EventInserts
{
    /// <summary>4 parameters per row. Microsoft.Data.Sqlite binds each parameter by name, a linear search in SQLite, so a statement of
    /// 200 rows (800 parameters) inserted half as fast as one of 50 here; 50 rows also stay far below SQLite's 32,766 host parameters and PostgreSQL's 65,535.</summary>
    internal const int RowsPerInsert = 50;

    private static readonly string?[] InsertText = new string?[RowsPerInsert + 1];

    /// <summary>The insert of <paramref name="rows"/> events, parameters <c>@j</c>, <c>@ts</c>, then <c>@sN @tN @oN @dN</c> per row.</summary>
    public static string Text(int rows) => InsertText[rows] ??= Build(rows);

    /// <param name="first">The seq of the first event; the others follow without gaps.</param>
    public static async Task InsertAsync(DbConnection connection, DbTransaction tx, string jobId, long first, DateTime ts, IReadOnlyList<IEventRow> events, CancellationToken ct)
    {
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

    private static DbCommand Command(DbConnection connection, DbTransaction tx, string jobId, DateTime ts, int rows)
    {
        var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = Text(rows);
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

    private static void Bind(DbCommand command, long first, int start, int rows, IReadOnlyList<IEventRow> events)
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

    private static string Build(int rows)
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
}
