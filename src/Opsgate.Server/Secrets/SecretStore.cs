using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Secrets;

/// <summary>Where kubeconfigs, tokens and passwords live. Values never leave it except to the code that uses them.</summary>
internal interface ISecretStore
{
    Task PutAsync(string name, byte[] value, CancellationToken ct);
    Task<byte[]?> GetAsync(string name, CancellationToken ct);
    Task DeleteAsync(string name, CancellationToken ct);

    /// <summary>The names stored under <paramref name="prefix"/> (which ends with '/'), in order.</summary>
    Task<IReadOnlyList<string>> NamesAsync(string prefix, CancellationToken ct);
}

internal sealed class SecretsOptions
{
    public const string Section = "Secrets";

    /// <summary>Base64 of 32 random bytes. Set it (the same on every replica) in production; without it a key file in the data dir is used.</summary>
    public string? Key { get; set; }

    /// <summary>Key file used when <see cref="Key"/> is not set; created (mode 0600) on first use. Default: {DataDir}/secrets.key.</summary>
    public string? KeyFile { get; set; }

    /// <summary>Comma-separated variable names, besides the built-in rule, whose values are secret (see <see cref="SecretVariables"/>).</summary>
    public string? SecretVariableNames { get; set; }
}

/// <summary>
/// The default store: values encrypted with AES-256-GCM in the Opsgate database. The secret's name is the
/// associated data, so a ciphertext copied onto another name's row fails to decrypt instead of leaking.
/// </summary>
internal sealed class LocalSecretStore : ISecretStore, IDisposable
{
    private const string Prefix = "aesgcm1:";
    private const int NonceSize = 12, TagSize = 16;

    private readonly Database _database;
    private readonly TimeProvider _time;
    private readonly AesGcm _aes;
    // One AesGcm is not safe for concurrent use (on OpenSSL two shards decrypting at once failed with "cipher
    // operation failed"); the operations are microseconds, so one lock is cheaper than a cipher per call.
    private readonly Lock _cipher = new();

    public LocalSecretStore(Database database, TimeProvider time, IOptions<SecretsOptions> options, IOptions<OpsgateOptions> opsgate)
    {
        _database = database;
        _time = time;
        _aes = new AesGcm(LoadKey(options.Value, opsgate.Value), TagSize);
    }

    public async Task PutAsync(string name, byte[] value, CancellationToken ct)
    {
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        var sealedValue = new byte[NonceSize + TagSize + value.Length];
        nonce.CopyTo(sealedValue, 0);
        lock (_cipher)
            _aes.Encrypt(nonce, value, sealedValue.AsSpan(NonceSize + TagSize), sealedValue.AsSpan(NonceSize, TagSize), Encoding.UTF8.GetBytes(name));
        var now = _time.GetUtcNow().UtcDateTime.TruncateToMicroseconds();
        await using var write = await _database.WriteAsync(ct);
        await write.Connection.ExecuteAsync(
            """
            INSERT INTO secrets (name, value, updated_at) VALUES (@name, @value, @now)
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """,
            new { name, value = Prefix + Convert.ToBase64String(sealedValue), now }, write.Transaction);
        await write.CommitAsync(ct);
    }

    public async Task<byte[]?> GetAsync(string name, CancellationToken ct)
    {
        await using var connection = await _database.OpenAsync(ct);
        var stored = await connection.QuerySingleOrDefaultAsync<string>("SELECT value FROM secrets WHERE name = @name", new { name });
        if (stored is null)
            return null;
        if (!stored.StartsWith(Prefix, StringComparison.Ordinal))
            throw new CryptographicException($"secret '{name}' is not in a format this store knows");
        var sealedValue = Convert.FromBase64String(stored[Prefix.Length..]);
        var plain = new byte[sealedValue.Length - NonceSize - TagSize];
        try
        {
            lock (_cipher)
                _aes.Decrypt(sealedValue.AsSpan(0, NonceSize), sealedValue.AsSpan(NonceSize + TagSize), sealedValue.AsSpan(NonceSize, TagSize), plain, Encoding.UTF8.GetBytes(name));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new CryptographicException($"secret '{name}' cannot be decrypted: it was stored with another key (Secrets:Key) or altered");
        }
        return plain;
    }

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        await using var write = await _database.WriteAsync(ct);
        await write.Connection.ExecuteAsync("DELETE FROM secrets WHERE name = @name", new { name }, write.Transaction);
        await write.CommitAsync(ct);
    }

    public async Task<IReadOnlyList<string>> NamesAsync(string prefix, CancellationToken ct)
    {
        if (!prefix.EndsWith('/') || prefix.Contains('%', StringComparison.Ordinal) || prefix.Contains('_', StringComparison.Ordinal))
            throw new ArgumentException("a prefix ends with '/' and holds no LIKE wildcard", nameof(prefix));
        await using var connection = await _database.OpenAsync(ct);
        return (await connection.QueryAsync<string>("SELECT name FROM secrets WHERE name LIKE @pattern ORDER BY name", new { pattern = prefix + "%" })).ToList();
    }

    public void Dispose() => _aes.Dispose();

    private static byte[] LoadKey(SecretsOptions options, OpsgateOptions opsgate)
    {
        if (options.Key is { Length: > 0 } configured)
            return Decode(configured, "Secrets:Key");
        var path = Path.GetFullPath(options.KeyFile ?? Path.Combine(opsgate.DataDir, "secrets.key"));
        if (File.Exists(path))
            return Decode(File.ReadAllText(path).Trim(), $"key file {path}");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var key = RandomNumberGenerator.GetBytes(32);
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(path, fileOptions))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(Convert.ToBase64String(key));
        }
        return key;
    }

    private static byte[] Decode(string base64, string where)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            throw new StartupException($"configuration error: {where} is not base64 (expected 32 random bytes, e.g. from `openssl rand -base64 32`)");
        }
        return key.Length == 32 ? key : throw new StartupException($"configuration error: {where} must decode to 32 bytes, not {key.Length}");
    }
}

internal static class SecretsExtensions
{
    public static void AddSecrets(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SecretsOptions>().Bind(builder.Configuration.GetSection(SecretsOptions.Section));
        builder.Services.AddSingleton<LocalSecretStore>();
        builder.Services.AddSingleton<ISecretStore>(sp => sp.GetRequiredService<LocalSecretStore>());
        // The key is read (or made) at start, so a bad Secrets: setting stops start-up rather than the first secret's use.
        builder.Services.AddStartupCheck(sp => sp.GetRequiredService<LocalSecretStore>());
        builder.Services.AddSingleton<SecretVariables>();
    }
}
