using System.Security.Cryptography;
using System.Text;
using Dapper;
using Opsgate.Server.Secrets;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Kubernetes;

public sealed class SecretStoreTests
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Secrets_round_trip_and_are_stored_encrypted(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var store = server.App.Services.GetRequiredService<ISecretStore>();
        var value = Encoding.UTF8.GetBytes("token: super-secret-value");
        await store.PutAsync("cluster/a/kubeconfig", value, default);
        Assert.Equal(value, await store.GetAsync("cluster/a/kubeconfig", default));

        await using (var db = await server.OpenDatabaseAsync())
        {
            var stored = await db.QuerySingleAsync<string>("SELECT value FROM secrets WHERE name = 'cluster/a/kubeconfig'");
            Assert.DoesNotContain("super-secret", stored, StringComparison.Ordinal);
            Assert.StartsWith("aesgcm1:", stored, StringComparison.Ordinal);

            // A ciphertext moved to another name does not decrypt: the name is authenticated.
            await db.ExecuteAsync("INSERT INTO secrets (name, value, updated_at) SELECT 'cluster/b/kubeconfig', value, updated_at FROM secrets WHERE name = 'cluster/a/kubeconfig'");
        }
        await Assert.ThrowsAsync<CryptographicException>(() => store.GetAsync("cluster/b/kubeconfig", default));

        await store.DeleteAsync("cluster/a/kubeconfig", default);
        Assert.Null(await store.GetAsync("cluster/a/kubeconfig", default));
    }

    /// <summary>Shards of one run read their sealed parameters at the same moment: every read must decrypt.</summary>
    [Fact]
    public async Task Concurrent_reads_all_decrypt()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var store = server.App.Services.GetRequiredService<ISecretStore>();
        var names = Enumerable.Range(0, 8).Select(i => $"job/{i}/params").ToList();
        foreach (var name in names)
            await store.PutAsync(name, Encoding.UTF8.GetBytes("value of " + name), default);

        var reads = names.Select(name => Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
                Assert.Equal("value of " + name, Encoding.UTF8.GetString((await store.GetAsync(name, default))!));
        }));
        await Task.WhenAll(reads);
    }

    [Fact]
    public async Task Without_a_configured_key_a_private_key_file_is_created_in_the_data_dir()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var keyFile = Path.Combine(server.DataDir, "secrets.key");
        Assert.True(File.Exists(keyFile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        Assert.Equal(32, Convert.FromBase64String(File.ReadAllText(keyFile)).Length);
    }
}
