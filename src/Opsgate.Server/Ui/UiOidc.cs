using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Ui;

/// <summary>
/// Console sign-in with the OIDC provider the API already trusts: ASP.NET Core's OpenID Connect handler runs the
/// authorization code flow with PKCE (S256), state and nonce; the tokens are read once at the callback and turned
/// into the same <see cref="Principal"/> the API builds from a bearer token (<see cref="OidcRoleMapping"/>), which
/// the session cookie then carries. No token is kept: the session lasts <see cref="UiSession.Lifetime"/> with the
/// role the provider gave at sign-in.
/// </summary>
internal static class UiOidc
{
    public const string Scheme = "OidcConsole";
    public const string CallbackPath = "/signin/oidc";

    /// <summary>
    /// Seals the reason a sign-in failed for its trip to the sign-in page in the address: the page shows only what
    /// this server wrote, so a crafted link cannot put words of its own on the sign-in form.
    /// </summary>
    public static IDataProtector Failures(IServiceProvider services) =>
        services.GetRequiredService<IDataProtectionProvider>().CreateProtector("opsgate.ui.oidc-failure");

    /// <summary>The reason sealed by <see cref="Failures"/>, or null for anything this server did not seal.</summary>
    public static string? FailureReason(IServiceProvider services, string sealedReason)
    {
        try
        {
            return Failures(services).Unprotect(sealedReason);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
    }

    /// <summary>True when the console offers OIDC sign-in (Auth:Oidc:Authority and Auth:Oidc:ClientId are set).</summary>
    public static bool Enabled(OidcOptions oidc) => !string.IsNullOrWhiteSpace(oidc.Authority) && !string.IsNullOrWhiteSpace(oidc.ClientId);

    public static void Add(AuthenticationBuilder authentication, OidcOptions oidc)
    {
        if (!Enabled(oidc))
            return;
        authentication.AddOpenIdConnect(Scheme, "OIDC", o =>
        {
            o.Authority = oidc.Authority;
            o.RequireHttpsMetadata = oidc.RequireHttpsMetadata;
            o.ClientId = oidc.ClientId;
            o.ClientSecret = string.IsNullOrEmpty(oidc.ClientSecret) ? null : oidc.ClientSecret;
            o.ResponseType = OpenIdConnectResponseType.Code;
            o.ResponseMode = OpenIdConnectResponseMode.Query;
            o.UsePkce = true;
            o.Scope.Clear();
            o.Scope.Add("openid");
            foreach (var scope in oidc.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                o.Scope.Add(scope);
            o.CallbackPath = CallbackPath;
            o.SignInScheme = UiSession.Scheme;
            o.SaveTokens = false;
            o.GetClaimsFromUserInfoEndpoint = false;
            o.MapInboundClaims = false;
            o.BackchannelTimeout = TimeSpan.FromSeconds(10);
            o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
            // The callback is a top-level GET from the provider: Lax cookies come along, and plain HTTP (a local
            // test set-up) still works, where SameSite=None would need Secure and be dropped.
            o.CorrelationCookie.SameSite = SameSiteMode.Lax;
            o.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.NonceCookie.SameSite = SameSiteMode.Lax;
            o.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.Events = new OpenIdConnectEvents
            {
                OnTokenValidated = context => ToPrincipalAsync(context, oidc),
                OnTicketReceived = AuditAsync,
                OnRemoteFailure = context =>
                {
                    // The provider said no (access_denied), the state or nonce did not match, or it was unreachable.
                    var why = context.Failure?.Message is { Length: > 0 } m ? m : "the sign-in did not complete";
                    var sealedWhy = Failures(context.HttpContext.RequestServices).Protect(why.Length <= 200 ? why : why[..200]);
                    context.Response.Redirect("/signin?oidcError=" + UrlEncoder.Default.Encode(sealedWhy));
                    context.HandleResponse();
                    return Task.CompletedTask;
                },
            };
        });
    }

    /// <summary>
    /// Reads who signed in: roles and groups from the access token when it is a JWT signed by the provider (Keycloak
    /// puts <c>realm_access</c> there), else from the ID token (Okta's <c>groups</c>). A user the role claim gives no
    /// Opsgate role is refused here, with the reason, rather than signed in to a console that refuses every page.
    /// </summary>
    private static async Task ToPrincipalAsync(TokenValidatedContext context, OidcOptions oidc)
    {
        var payload = context.SecurityToken is { } idToken ? idToken.EncodedPayload : null;
        if (context.TokenEndpointResponse?.AccessToken is { } access && await ValidAccessTokenAsync(context, access) is { } accessToken)
            payload = accessToken.EncodedPayload;
        var principal = payload is null ? null : OidcRoleMapping.ToPrincipal(payload, oidc);
        if (principal is null)
        {
            context.Fail("the provider's token has no 'sub' claim, so it does not say who signed in");
            return;
        }
        if (principal.Role is null)
        {
            context.Fail($"{principal.Name} has no Opsgate role: the token's '{oidc.RoleClaim}' claim holds none that maps to one");
            return;
        }
        context.Principal = principal.ToClaimsPrincipal();
        context.Properties!.IsPersistent = false;
        context.Properties.AllowRefresh = false;
    }

    /// <summary>The access token, when it is a JWT from this provider with a valid signature and lifetime; null otherwise.</summary>
    private static async Task<JsonWebToken?> ValidAccessTokenAsync(TokenValidatedContext context, string accessToken)
    {
        var handler = new JsonWebTokenHandler();
        if (!handler.CanReadToken(accessToken))
            return null;
        var configuration = await context.Options.ConfigurationManager!.GetConfigurationAsync(context.HttpContext.RequestAborted);
        var result = await handler.ValidateTokenAsync(accessToken, new TokenValidationParameters
        {
            ValidIssuer = configuration.Issuer,
            IssuerSigningKeys = configuration.SigningKeys,
            // Its audience is the API (or Keycloak's "account"), not this client; it came straight from the token endpoint.
            ValidateAudience = false,
            ClockSkew = TimeSpan.FromSeconds(30),
        });
        return result.IsValid ? result.SecurityToken as JsonWebToken : null;
    }

    private static async Task AuditAsync(TicketReceivedContext context)
    {
        var http = context.HttpContext;
        http.User = context.Principal!;
        await UiSession.AuditAsync(http, "session.create", "session", AuditStatus.Success, StatusCodes.Status302Found, null);
    }
}
