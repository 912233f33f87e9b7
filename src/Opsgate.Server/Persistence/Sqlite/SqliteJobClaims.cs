using Dapper;

namespace Opsgate.Server.Persistence.Sqlite;

/// <summary>
/// SQLite: one writer at a time (the write turn, an immediate transaction), so a claim is a search, then for each row
/// found an <c>UPDATE ... RETURNING</c> guarded by the row still being claimable: a row another process took meanwhile
/// is skipped, never taken twice.
/// </summary>
internal sealed class SqliteJobClaims(Database database) : IJobClaims
{
    public async Task<Claimed<TRow, TChild>> ClaimAsync<TRow, TChild>(ClaimQuery query, IReadOnlyList<string> owners, TimeSpan lease, Func<DateTime> now,
        Func<TRow, string> idOf, Func<TChild, string> parentOf, CancellationToken ct)
    {
        // The candidates are read before the write turn is taken (the search is the costly part of a claim, and the turn
        // is what every writer in the process queues for); each is then taken only if still claimable.
        List<string> candidates;
        await using (var read = await database.OpenAsync(ct))
        {
            candidates = (await read.QueryAsync<string>(
                $"SELECT id FROM (SELECT * FROM ({query.Pending}) UNION ALL SELECT * FROM ({query.Expired})) ORDER BY created_at, id LIMIT @n",
                new { now = now(), n = owners.Count })).AsList();
        }
        if (candidates.Count == 0)
            return new(null, [], LookAgain: false);
        var write = await database.WriteAsync(engine: true, ct);
        try
        {
            // The time once the turn is had (a job that waited for its concurrency key shows a start after the holder's finish).
            var at = now();
            var rows = new List<(TRow Row, IReadOnlyList<TChild> Children)>(candidates.Count);
            foreach (var id in candidates)
            {
                // Checkpoint 1 (see JobStore.ClaimAsync): the row is set running with this owner's lease, in the transaction.
                var row = await write.Connection.QuerySingleOrDefaultAsync<TRow>(
                    $"""
                    UPDATE {query.Table} SET {query.Set} WHERE id = @id AND {query.Claimable}
                    RETURNING {query.Columns}
                    """, new { id, owner = owners[rows.Count], now = at, expires = at + lease }, write.Transaction);
                if (row is null)
                    continue;
                var children = await write.Connection.QueryAsync<TChild>(
                    $"SELECT {query.ChildColumns} FROM {query.ChildTable} WHERE {query.ChildKey} = @id ORDER BY {query.ChildOrder}", new { id }, write.Transaction);
                rows.Add((row, children.AsList()));
            }
            // None taken although some were found: another process took them meanwhile.
            return new(write, rows, LookAgain: rows.Count == 0);
        }
        catch
        {
            await write.DisposeAsync();
            throw;
        }
    }
}
