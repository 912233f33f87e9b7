using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Mvc.ApplicationParts;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Auth;
using Opsgate.Server.Hosting;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Ui;

/// <summary>
/// The web console at <c>/</c>: Razor Pages rendered on the server from the same services the API calls, a session
/// cookie made from an API key, and two small static files. See docs/design/ui.md for why it is built this way.
/// </summary>
internal static class UiExtensions
{
    public static void AddUi(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddRazorPages(o =>
        {
            o.RootDirectory = "/Ui/Pages";
            // Every page asks for a viewer (the fallback policy) unless it says otherwise; these are how one signs in.
            o.Conventions.AllowAnonymousToPage("/SignIn");
            // Administration needs an admin, as its API routes do.
            o.Conventions.AuthorizeFolder("/Admin", Roles.Policy(Role.Admin));
        }).ConfigureApplicationPartManager(parts =>
        {
            // The pages are found in the application's entry assembly; a test host's entry assembly is another one.
            var assembly = typeof(UiExtensions).Assembly;
            if (!parts.ApplicationParts.Any(p => p is AssemblyPart a && a.Assembly == assembly))
            {
                foreach (var part in ApplicationPartFactory.GetApplicationPartFactory(assembly).GetApplicationParts(assembly))
                    parts.ApplicationParts.Add(part);
            }
        });
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "opsgate_antiforgery";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.FormFieldName = "__RequestVerificationToken";
            // UiHeaders sends DENY on every page; the antiforgery default (SAMEORIGIN) would weaken it.
            o.SuppressXFrameOptionsHeader = true;
        });
        // Session cookies and antiforgery tokens are protected with keys kept in the secret store, shared by replicas.
        services.AddDataProtection().SetApplicationName("opsgate");
        services.AddOptions<KeyManagementOptions>().Configure<ISecretStore>((o, secrets) => o.XmlRepository = new UiKeyRepository(secrets));
        // Says the keys are stored unencrypted: the secret store encrypts them, which Data Protection cannot see.
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection.KeyManagement.XmlKeyManager", LogLevel.Error);
        var oidc = new OidcOptions();
        builder.Configuration.GetSection("Auth:Oidc").Bind(oidc);
        UiOidc.Add(services.AddAuthentication().AddCookie(UiSession.Scheme, UiSession.Configure), oidc);
        services.AddSingleton<UiSession>();
        services.AddScoped<JobListQuery>();
        services.AddScoped<DashboardQuery>();
        services.AddSingleton<Pages.AuditChecks>();
        // The cluster page's notice after an action travels in TempData's cookie: protected, and sent back to this site only.
        services.Configure<Microsoft.AspNetCore.Mvc.CookieTempDataProviderOptions>(o => { o.Cookie.Name = "opsgate_notice"; o.Cookie.SameSite = SameSiteMode.Strict; });
        services.AddScoped<AnsibleResultsQuery>();
        services.AddScoped<ApprovalQueueQuery>();
        // The API's scheme picks the session cookie for the console's pages and the job event streams (GET only).
        services.PostConfigure<PolicySchemeOptions>(AuthExtensions.PolicyScheme, o =>
        {
            var api = o.ForwardDefaultSelector;
            o.ForwardDefaultSelector = context => UiSession.Selects(context) ? UiSession.Scheme : api?.Invoke(context);
        });
        // A console page without a session goes to the sign-in form instead of answering problem+json.
        var denials = services.Last(d => d.ServiceType == typeof(IAuthorizationMiddlewareResultHandler));
        services.Remove(denials);
        services.AddSingleton<IAuthorizationMiddlewareResultHandler>(sp =>
            new UiDenials((IAuthorizationMiddlewareResultHandler)ActivatorUtilities.CreateInstance(sp, denials.ImplementationType!)));
    }

    public static void MapUi(this WebApplication app)
    {
        app.Use((context, next) =>
        {
            if (UiSession.IsConsole(context))
                UiHeaders.Apply(context.Response);
            return next(context);
        });
        app.MapRazorPages().WithMetadata(UiSession.Marker);
        UiAssets.Map(app);
    }
}
