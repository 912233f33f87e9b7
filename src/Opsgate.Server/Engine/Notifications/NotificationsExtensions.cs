using Microsoft.Extensions.Options;

namespace Opsgate.Server.Engine.Notifications;

internal static class NotificationsExtensions
{
    /// <summary>Binds <c>Notifications:</c>, the outbound HTTP client, and the notifier (a hosted service: register it before the job worker, so it stops after it).</summary>
    public static void AddNotifications(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<NotificationsOptions>().Bind(builder.Configuration.GetSection(NotificationsOptions.Section));
        services.AddSingleton<IValidateOptions<NotificationsOptions>, NotificationsOptionsValidator>();
        services.AddHttpClient(HttpDelivery.ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                // Webhook hosts move (DNS); pooled connections are renewed so a new address is picked up.
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            // The default handlers log every request's URL at Information; a webhook URL is a credential.
            .RemoveAllLoggers();
        services.AddSingleton<JobNotifier>();
        services.AddHostedService(sp => sp.GetRequiredService<JobNotifier>());
    }
}
