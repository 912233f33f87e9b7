namespace Opsgate.Server.Audit;

/// <summary>The hash-chained audit log: its writer, its reader and the <c>/api/v1/audit</c> routes.</summary>
internal static class AuditFeature
{
    public static void AddAudit(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditWriter>());
        builder.Services.AddSingleton<AuditLog>();
    }

    public static void MapAudit(this WebApplication app) => app.MapAuditApi();
}
