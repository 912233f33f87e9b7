namespace Opsgate.Server.Audit;

internal static class AuditExtensions
{
    public static void AddAudit(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditWriter>());
        builder.Services.AddSingleton<AuditLog>();
    }
}
