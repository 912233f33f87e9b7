using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Opsgate.Client;
using Opsgate.Server.Hosting;

namespace Opsgate.Cli.Tests.Infrastructure;

/// <summary>
/// A real Opsgate server in this process on a loopback port (SQLite in a temp dir), with a few test runbooks beside
/// the built-in ones, shared by the tests of a class: opsctl talks to it over HTTP like it would to any server.
/// </summary>
public sealed class CliServer : IAsyncLifetime
{
    public const string AdminKey = "cli-test-admin-key-0123456789abcdef";

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "opsctl-test-" + Guid.NewGuid().ToString("N")[..12]);
    private WebApplication? _app;

    public Uri BaseAddress { get; private set; } = null!;

    public OpsgateClient Admin { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var runbooks = await WriteRunbooksAsync(Path.Combine(_dir, "runbooks"));
        _app = OpsgateHost.Build([.. Args(_dir, runbooks), "--urls=http://127.0.0.1:0"]);
        await _app.StartOpsgateAsync();
        BaseAddress = new Uri(_app.ListeningAddresses().First());
        Admin = new OpsgateClient(BaseAddress, AdminKey);
    }

    /// <summary>The server's command line (without --urls): data and runbooks under <paramref name="dir"/>.</summary>
    public static string[] Args(string dir, string runbooks) =>
    [
        $"--DataDir={Path.Combine(dir, "data")}",
        $"--Auth:BootstrapAdminKey={AdminKey}",
        "--RateLimit:Enabled=false",
        "--Logging:LogLevel:Default=Warning",
        $"--Jobs:RunbookDirectory={runbooks}",
    ];

    /// <summary>Writes the test runbooks into <paramref name="dir"/>; answers its full path.</summary>
    public static async Task<string> WriteRunbooksAsync(string dir)
    {
        var runbooks = Directory.CreateDirectory(dir).FullName;
        // slow: steps that take a moment, to follow and to drop the connection under. fails: a call nobody answers.
        await File.WriteAllTextAsync(Path.Combine(runbooks, "slow.yaml"), """
            name: slow
            description: Two pauses and a message, for following a job.
            parameters:
              - name: pause
                type: string
                default: 200ms
              - name: count
                type: int
                default: 1
            steps:
              - name: first
                kind: sleep
                with:
                  duration: "{{ params.pause }}"
              - name: second
                kind: sleep
                with:
                  duration: "{{ params.pause }}"
              - name: third
                kind: noop
                with:
                  message: all done
            """);
        await File.WriteAllTextAsync(Path.Combine(runbooks, "fails.yaml"), """
            name: fails
            description: Calls a port nothing listens on.
            steps:
              - name: call
                kind: http.call
                with:
                  url: http://127.0.0.1:1/
            """);
        await File.WriteAllTextAsync(Path.Combine(runbooks, "gated.yaml"), """
            name: gated
            description: Waits for an approver.
            options:
              requires_approval: true
            steps:
              - name: only
                kind: noop
            """);
        return runbooks;
    }
    /// <summary>Creates an API key through the API; answers the key.</summary>
    public async Task<string> CreateKeyAsync(string name, string role)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress };
        http.DefaultRequestHeaders.Add("X-API-Key", AdminKey);
        var response = await http.PostAsJsonAsync("/api/v1/apikeys", new { name, role });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"creating key {name}: {(int)response.StatusCode} {body}");
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("key").GetString()!;
    }

    /// <summary>Waits until the job is finished; answers it.</summary>
    public async Task<Job> WaitFinishedAsync(string id)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var job = await Admin.GetJobAsync(id);
            if (job.IsFinished)
                return job;
            Assert.True(DateTime.UtcNow < deadline, $"job {id} still {job.Status} after 20 s");
            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        Admin?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // A file still held for a moment; the OS temp cleaner gets it.
        }
    }
}
