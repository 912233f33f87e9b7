using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>Submitting and following jobs over the API, for tests.</summary>
public static class TestJobs
{
    public static async Task<string> SubmitAsync(HttpClient client, string type, object? parameters = null, bool dryRun = false)
    {
        var response = await client.PostAsJsonAsync("/api/v1/jobs", new { type, @params = parameters, dry_run = dryRun }, OpsgateServer.Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, $"submit {type}: {(int)response.StatusCode} {body}");
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("job_id").GetString()!;
    }

    public static async Task<JsonElement> GetAsync(HttpClient client, string id) =>
        await client.GetFromJsonAsync<JsonElement>($"/api/v1/jobs/{id}");

    /// <summary>Polls the job until <paramref name="done"/> holds (default: finished), failing after <paramref name="timeout"/>.</summary>
    public static async Task<JsonElement> WaitAsync(HttpClient client, string id, Func<JsonElement, bool>? done = null, TimeSpan? timeout = null)
    {
        done ??= j => j.GetProperty("status").GetString() is "succeeded" or "failed" or "cancelled";
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var job = await GetAsync(client, id);
            if (done(job))
                return job;
            Assert.True(watch.Elapsed < limit, $"job {id} did not get there within {limit}: {job}");
            await Task.Delay(25);
        }
    }

    public static string Status(this JsonElement job) => job.GetProperty("status").GetString()!;

    public static JsonElement Step(this JsonElement job, string name) =>
        job.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);

    public static IReadOnlyList<string> StepStatuses(this JsonElement job) =>
        job.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("status").GetString()!).ToList();
}
