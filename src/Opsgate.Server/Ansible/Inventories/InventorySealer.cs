using System.Text.Json;
using Dapper;
using Opsgate.Server.Persistence;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>
/// Seals the inventory versions written before secret values were kept in the secret store (migration 0015 marks
/// them <c>secrets_sealed = 0</c>): encryption cannot happen in SQL, so this runs at start-up, after the migrations
/// and before the server listens.
/// </summary>
/// <remarks>
/// For each version: 1. the values go into the secret store under a new name; 2. the row is updated (placeholders,
/// the secret's name, sealed) only if it is still unsealed. A crash between 1 and 2 leaves the row as it was, to be
/// sealed on the next start (and an unused secret); a replica that sealed the row first makes 2 change nothing, and
/// this one deletes its secret again. Running it again finds nothing to do.
/// </remarks>
internal sealed partial class InventorySealer(Database database, InventorySecrets secrets, ISecretStore secretStore, ILogger<InventorySealer> logger)
{
    private const int Batch = 100;

    public async Task SealOldVersionsAsync(CancellationToken ct)
    {
        var (sealedCount, withSecrets) = (0, 0);
        (long Id, long Seq) after = (0, 0);
        while (true)
        {
            List<Row> rows;
            await using (var connection = await database.OpenAsync(ct))
            {
                rows = (await connection.QueryAsync<Row>(new CommandDefinition(
                    """
                    SELECT inventory_id, seq, hosts, vars, inventory, expanded FROM inventory_versions
                    WHERE secrets_sealed = 0 AND (inventory_id > @id OR (inventory_id = @id AND seq > @seq))
                    ORDER BY inventory_id, seq LIMIT @batch
                    """, new { id = after.Id, seq = after.Seq, batch = Batch }, cancellationToken: ct))).ToList();
            }
            if (rows.Count == 0)
                break;
            foreach (var row in rows)
            {
                if (await SealAsync(row, ct) is { } hadSecrets)
                {
                    sealedCount++;
                    withSecrets += hadSecrets ? 1 : 0;
                }
            }
            after = (rows[^1].InventoryId, rows[^1].Seq);
        }
        if (sealedCount > 0)
            LogSealed(logger, sealedCount, withSecrets);
    }

    /// <summary>Whether the version had secret values; null when another replica sealed it meanwhile.</summary>
    private async Task<bool?> SealAsync(Row row, CancellationToken ct)
    {
        var texts = secrets.Seal(row.Hosts, row.Vars, row.Inventory, row.Expanded, refusePlaceholders: false);
        var secretName = texts.Values is null ? null : InventorySecrets.NewSecretName();
        if (secretName is not null)
            await secretStore.PutAsync(secretName, JsonSerializer.SerializeToUtf8Bytes(texts.Values), ct);
        int updated;
        await using (var write = await database.WriteAsync(ct))
        {
            updated = await write.Connection.ExecuteAsync(
                """
                UPDATE inventory_versions SET hosts = @hosts, vars = @vars, inventory = @inventory, expanded = @expanded, secret_name = @secretName, secrets_sealed = 1
                WHERE inventory_id = @id AND seq = @seq AND secrets_sealed = 0
                """,
                new { hosts = texts.Hosts, vars = texts.Vars, inventory = texts.Inventory, expanded = texts.Expanded, secretName, id = row.InventoryId, seq = row.Seq },
                write.Transaction);
            await write.CommitAsync(ct);
        }
        if (updated == 0 && secretName is not null)
            await secretStore.DeleteAsync(secretName, ct);
        return updated == 0 ? null : secretName is not null;
    }

    private sealed class Row
    {
        public long InventoryId { get; set; }
        public long Seq { get; set; }
        public string Hosts { get; set; } = "";
        public string? Vars { get; set; }
        public string Inventory { get; set; } = "";
        public string Expanded { get; set; } = "";
    }

    [LoggerMessage(EventId = 800, Level = LogLevel.Information, Message = "Sealed {Count} inventory versions written before secret values were encrypted ({WithSecrets} had secret values)")]
    private static partial void LogSealed(ILogger logger, int count, int withSecrets);
}
