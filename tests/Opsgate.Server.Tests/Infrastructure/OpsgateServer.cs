using System.Data.Common;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Opsgate.Server.Hosting;
using Opsgate.Server.Persistence;

namespace Opsgate.Server.Tests.Infrastructure;

public enum Provider { Sqlite, Postgres }

/// <summary>
/// A real Opsgate server in this process, listening on a loopback port, on a fresh SQLite file or a fresh
/// PostgreSQL database. Tests talk to it over HTTP like any client.
/// </summary>
public sealed class OpsgateServer : IAsyncDisposable
{
    public const string AdminKey = "test-admin-key-0123456789abcdef";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly TempDir _dir;
    private readonly PostgresDatabase? _postgres;
    private readonly List<HttpClient> _clients = [];

    private OpsgateServer(WebApplication app, TempDir dir, PostgresDatabase? postgres, Provider provider)
    {
        App = app;
        _dir = dir;
        _postgres = postgres;
        Provider = provider;
        BaseAddress = new Uri(app.ListeningAddresses().First());
        Admin = Client(AdminKey);
    }

    public WebApplication App { get; }
    public Provider Provider { get; }
    public Uri BaseAddress { get; }
    public string DataDir => _dir.Path;

    /// <summary>The server's PostgreSQL database (null on SQLite), for tests that take it away while the server runs.</summary>
    public PostgresDatabase? Postgres => _postgres;
    public HttpClient Admin { get; }

    public static async Task<OpsgateServer> StartAsync(
        Provider provider, IEnumerable<string>? args = null, Action<IServiceCollection>? configureServices = null)
    {
        var dir = new TempDir();
        var postgres = provider == Provider.Postgres ? await PostgresDatabase.CreateAsync() : null;
        var all = new List<string>
        {
            "--urls=http://127.0.0.1:0",
            $"--DataDir={dir.Path}",
            $"--Auth:BootstrapAdminKey={AdminKey}",
            "--RateLimit:Enabled=false",
            "--Logging:LogLevel:Default=Warning",
            // The Ansible tests use local hosts whose "machine" is a temp dir the test reads back: their runs may write
            // /tmp (the data dir stays hidden). SandboxTests turn this off to see the sandbox as shipped.
            "--Ansible:SandboxWritablePaths=/tmp",
        };
        if (postgres is not null)
        {
            all.Add("--Database:Provider=postgres");
            all.Add($"--Database:ConnectionString={postgres.ConnectionString}");
        }
        all.AddRange(args ?? []);
        var app = OpsgateHost.Build([.. all], configureServices);
        await app.StartOpsgateAsync();
        return new OpsgateServer(app, dir, postgres, provider);
    }

    /// <summary>An HTTP client that sends <paramref name="key"/> as X-API-Key (none: anonymous).</summary>
    public HttpClient Client(string? key = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null)
            client.DefaultRequestHeaders.Add("X-API-Key", key);
        _clients.Add(client);
        return client;
    }

    public HttpClient BearerClient(string token)
    {
        var client = Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Creates an API key through the API and returns (id, key).</summary>
    public async Task<(string Id, string Key)> CreateKeyAsync(string name, string role, string[]? namespaces = null)
    {
        var response = await Admin.PostAsJsonAsync("/api/v1/apikeys", new { name, role, namespaces }, Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"creating key {name}: {(int)response.StatusCode} {body}");
        using var doc = JsonDocument.Parse(body);
        return (doc.RootElement.GetProperty("id").GetString()!, doc.RootElement.GetProperty("key").GetString()!);
    }

    /// <summary>A direct connection to the server's database, for checks (and tampering) behind the API's back.</summary>
    public Task<DbConnection> OpenDatabaseAsync() => App.Services.GetRequiredService<Database>().OpenAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (_postgres is not null)
            await _postgres.DisposeAsync();
        _dir.Dispose();
    }
}
