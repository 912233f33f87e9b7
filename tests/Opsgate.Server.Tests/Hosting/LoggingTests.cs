using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>Logs as the real binary writes them to stdout.</summary>
public sealed class LoggingTests
{
    private const string BootstrapKey = "bootstrap-secret-0123456789abcdef";
    private const string WrongKey = "og_this-key-was-never-issued-0123456789abcdef";

    [Fact]
    public async Task Json_logs_are_one_object_per_line_carry_the_request_id_and_never_a_key()
    {
        using var dir = new TempDir();
        await using var opsgate = await OpsgateProcess.StartReadyAsync(dir.Path, environment: new Dictionary<string, string>
        {
            ["OPSGATE_LOGGING__JSON"] = "true",
            ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = BootstrapKey,
        });
        var admin = opsgate.Client(BootstrapKey);
        var created = await admin.PostAsJsonAsync("/api/v1/apikeys", new { name = "logged", role = "viewer" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await opsgate.Client(key).GetAsync("/api/v1/audit?limit=1")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await opsgate.Client(key).GetAsync("/api/v1/apikeys")).StatusCode);
        var refused = await opsgate.Client(WrongKey).GetAsync("/api/v1/apikeys");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        var requestId = Assert.Single(refused.Headers.GetValues("X-Request-Id"));

        // The refusal is logged at Information, in the request's scope; the console logger writes in order, so every earlier line is out too.
        var line = await opsgate.WaitForStdoutAsync(l => l.Contains(requestId, StringComparison.Ordinal) && l.Contains("\"Opsgate.Requests\"", StringComparison.Ordinal), "the log line of the refused request");
        using (var entry = JsonDocument.Parse(line))
        {
            var root = entry.RootElement;
            Assert.Equal("Information", root.GetProperty("LogLevel").GetString());
            Assert.Equal(401, root.GetProperty("State").GetProperty("Status").GetInt32());
            Assert.Equal("/api/v1/apikeys", root.GetProperty("State").GetProperty("Endpoint").GetString());
            Assert.Contains(root.GetProperty("Scopes").EnumerateArray(), s => s.TryGetProperty("RequestId", out var id) && id.GetString() == requestId);
        }
        // One line per refusal: the authentication handler's own chatter stays below the default level.
        Assert.Single(opsgate.StdoutLines, l => l.Contains(requestId, StringComparison.Ordinal));

        // Every stdout line is a JSON log entry, except the start-up line, which is printed, not logged.
        foreach (var stdout in opsgate.StdoutLines.Where(l => l.Length > 0 && !l.StartsWith("Opsgate listening on ", StringComparison.Ordinal)))
        {
            using var entry = ParseOrFail(stdout);
            Assert.True(entry.RootElement.TryGetProperty("Category", out _), stdout);
            Assert.True(entry.RootElement.TryGetProperty("Message", out _), stdout);
            if (entry.RootElement.GetProperty("Category").GetString() == "Opsgate.Requests")
                Assert.Contains(entry.RootElement.GetProperty("Scopes").EnumerateArray(), s => s.TryGetProperty("RequestId", out _));
        }
        var output = opsgate.Output;
        Assert.DoesNotContain(BootstrapKey, output, StringComparison.Ordinal);
        Assert.DoesNotContain(key, output, StringComparison.Ordinal);
        Assert.DoesNotContain(WrongKey, output, StringComparison.Ordinal);
    }

    private static JsonDocument ParseOrFail(string line)
    {
        try
        {
            return JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"not a JSON log line ({e.Message}): {line}");
        }
    }
}
