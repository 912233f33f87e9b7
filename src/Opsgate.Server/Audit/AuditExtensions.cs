namespace Opsgate.Server.Audit;

internal static class AuditExtensions
{
    public static void AddAudit(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditWriter>());
        // Registered after the writer so it stops before it: its last summaries are written on the way out.
        builder.Services.AddSingleton<RefusalTally>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RefusalTally>());
        builder.Services.AddSingleton<AuditLog>();
    }
}
