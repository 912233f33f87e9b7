namespace Opsgate.Server.Jobs;

/// <summary>The job engine's HTTP face: the job routes (canonical and apiops-compatible), their one authorization point and the live event streams.</summary>
internal static class JobsFeature
{
    public static void AddJobs(this WebApplicationBuilder builder) =>
        builder.Services.AddSingleton<JobAccess>();

    public static void MapJobs(this WebApplication app) => app.MapJobsApi();
}
