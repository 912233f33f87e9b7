using System.Text.Json;
using Dapper;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

/// <summary>No job is lost or run twice: a killed server resumes its job; two servers share one queue.</summary>
public sealed class JobDurabilityTests
{
    private const string FourSteps = """
        name: four-steps
        steps:
          - {name: one, kind: noop}
          - {name: two, kind: noop}
          - {name: three, kind: sleep, with: {duration: 3s}}
          - {name: four, kind: noop}
        """;

    [Fact]
    public async Task Kill_9_in_the_middle_of_step_3_and_a_restart_resumes_at_step_3()
    {
        using var work = new TempDir();
        var runbooks = Directory.CreateDirectory(Path.Combine(work.Path, "runbooks")).FullName;
        await File.WriteAllTextAsync(Path.Combine(runbooks, "four-steps.yaml"), FourSteps);
        var environment = new Dictionary<string, string>
        {
            ["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = OpsgateServer.AdminKey,
            // Short, so the killed server's lease lapses soon; not shorter, or a renewal held up by a loaded machine
            // (load 20 in CI) lets the live server's own lease lapse too and the job runs a third time.
            ["OPSGATE_JOBS__LEASEDURATION"] = "00:00:05",
            ["OPSGATE_JOBS__POLLINTERVAL"] = "00:00:00.200",
            ["OPSGATE_JOBS__RUNBOOKDIRECTORY"] = runbooks,
        };

        string id;
        await using (var first = await OpsgateProcess.StartReadyAsync(work.Path, environment: environment))
        {
            var admin = first.Client(OpsgateServer.AdminKey);
            id = await TestJobs.SubmitAsync(admin, "four-steps");
            await TestJobs.WaitAsync(admin, id, j => j.Step("three").GetProperty("status").GetString() == "running");
            await first.StopAsync(); // SIGKILL: no shutdown code runs, the lease is left to expire
        }

        await using var second = await OpsgateProcess.StartReadyAsync(work.Path, environment: environment);
        var client = second.Client(OpsgateServer.AdminKey);
        var job = await TestJobs.WaitAsync(client, id, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal("succeeded", job.Status());
        Assert.Equal(2, job.GetProperty("attempt").GetInt32());
        Assert.Equal(1, job.Step("one").GetProperty("attempts").GetInt32());
        Assert.Equal(1, job.Step("two").GetProperty("attempts").GetInt32());
        Assert.Equal(2, job.Step("three").GetProperty("attempts").GetInt32());
        Assert.Equal(1, job.Step("four").GetProperty("attempts").GetInt32());

        var audit = await client.GetStringAsync($"/api/v1/audit/verify");
        Assert.Contains("\"ok\":true", audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_servers_on_one_postgres_run_200_jobs_each_exactly_once()
    {
        await using var postgres = await PostgresDatabase.CreateAsync();
        string[] args = ["--Database:Provider=postgres", $"--Database:ConnectionString={postgres.ConnectionString}", "--Jobs:Workers=4"];
        await using var a = await OpsgateServer.StartAsync(Provider.Sqlite, args);
        await using var b = await OpsgateServer.StartAsync(Provider.Sqlite, args);

        var ids = new List<string>();
        for (var i = 0; i < 200; i++)
            ids.Add(await TestJobs.SubmitAsync(i % 2 == 0 ? a.Admin : b.Admin, "noop", new { message = $"job {i}" }));
        foreach (var id in ids)
            Assert.Equal("succeeded", (await TestJobs.WaitAsync(a.Admin, id)).Status());

        await using var db = await a.OpenDatabaseAsync();
        Assert.Equal(200, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded' AND attempt = 1"));
        Assert.Equal(200, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM job_steps WHERE status = 'succeeded' AND attempts = 1"));
        var workers = (await db.QueryAsync<string>("SELECT data FROM job_events WHERE type = 'job.started'"))
            .Select(d => JsonDocument.Parse(d).RootElement.GetProperty("worker").GetString()).ToList();
        Assert.Equal(200, workers.Count);
        Assert.Equal(2, workers.Distinct().Count());
    }
}
