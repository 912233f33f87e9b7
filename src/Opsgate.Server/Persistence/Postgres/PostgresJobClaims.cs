using Dapper;

namespace Opsgate.Server.Persistence.Postgres;

/// <summary>
/// PostgreSQL: processes claim side by side. Each row is taken by one statement that locks the oldest claimable row
/// nobody else has locked (<c>FOR UPDATE SKIP LOCKED</c>) and sets it in the same statement: two claimers never wait for,
/// nor take, the same row. The row stays locked until the claim commits; after that its lease hides it.
/// </summary>
internal sealed class PostgresJobClaims(Database database) : IJobClaims
{
    public async Task<Claimed<TRow, TChild>> ClaimAsync<TRow, TChild>(ClaimQuery query, IReadOnlyList<string> owners, TimeSpan lease, Func<DateTime> now,
        Func<TRow, string> idOf, Func<TChild, string> parentOf, CancellationToken ct)
    {
        var write = await database.WriteAsync(engine: true, ct);
        try
        {
            // The time once the turn is had, not before waiting for it: a job that waited for its concurrency key shows
            // a start after the holder's finish (here, where writers run side by side, up to a round trip before it).
            var at = now();
            var returning = string.Join(", ", query.Columns.Split(", ").Select(c => $"{query.Table}.{c}"));
            var sql = $"""
                UPDATE {query.Table} SET {query.Set} FROM (
                    SELECT id AS claimed FROM (
                        SELECT * FROM ({query.Pending} FOR UPDATE SKIP LOCKED) p
                        UNION ALL
                        SELECT * FROM ({query.Expired} FOR UPDATE SKIP LOCKED) e
                    ) candidates ORDER BY created_at, id LIMIT 1) c
                WHERE {query.Table}.id = c.claimed RETURNING {returning}
                """;
            // Checkpoint 1 (see JobStore.ClaimAsync): each row is set running with this owner's lease, in the transaction.
            var rows = new List<TRow>(owners.Count);
            for (var i = 0; i < owners.Count; i++)
            {
                var row = await write.Connection.QuerySingleOrDefaultAsync<TRow>(sql, new { owner = owners[i], now = at, expires = at + lease, n = 1 }, write.Transaction);
                if (row is null)
                    break;
                rows.Add(row);
            }
            if (rows.Count == 0)
                return new(write, [], LookAgain: false);
            // A statement of its own, after the claims: a previous holder's child write that committed while a claim waited
            // for the row is seen (a read within the claim's own statement would be older).
            var children = (await write.Connection.QueryAsync<TChild>(
                $"SELECT {query.ChildColumns} FROM {query.ChildTable} WHERE {query.ChildKey} = ANY(@ids) ORDER BY {query.ChildKey}, {query.ChildOrder}",
                new { ids = rows.Select(idOf).ToArray() }, write.Transaction)).ToLookup(parentOf);
            return new(write, [.. rows.Select(r => (r, (IReadOnlyList<TChild>)[.. children[idOf(r)]]))], LookAgain: false);
        }
        catch
        {
            await write.DisposeAsync();
            throw;
        }
    }
}
