using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;

namespace Opsgate.Server.Ui.Pages;

/// <summary>Sign-in with an API key (exchanged for the session cookie) and sign-out.</summary>
internal sealed class SignInModel(UiSession sessions, RefusalTally refusals, IOptions<AuthOptions> auth) : PageModel
{
    public string? Error { get; private set; }
    public bool SignedOut { get; private set; }
    public string ReturnUrl { get; private set; } = "/";
    public bool OidcOffered => UiOidc.Enabled(auth.Value.Oidc);

    public void OnGet(string? returnUrl, string? oidcError, bool signedOut = false)
    {
        ReturnUrl = LocalOrHome(returnUrl);
        SignedOut = signedOut;
        if (oidcError is not null && oidcError.Length <= 2000 && UiOidc.FailureReason(HttpContext.RequestServices, oidcError) is { } why)
        {
            Error = "OIDC sign-in failed: " + why;
            Response.StatusCode = StatusCodes.Status401Unauthorized;
        }
    }

    /// <summary>
    /// Off to the provider (authorization code with PKCE); it comes back to <see cref="UiOidc.CallbackPath"/>. A link,
    /// not a form: the page's CSP allows forms to post only to this server, and that covers their redirects too.
    /// The correlation cookie and state tie the callback to this browser, so nobody can sign it in as someone else.
    /// </summary>
    public IActionResult OnGetOidc(string? returnUrl)
    {
        if (!OidcOffered)
            return NotFound();
        return Challenge(new AuthenticationProperties { RedirectUri = LocalOrHome(returnUrl) }, UiOidc.Scheme);
    }

    public async Task<IActionResult> OnPostAsync([FromForm] string? key, [FromForm] string? returnUrl)
    {
        ReturnUrl = LocalOrHome(returnUrl);
        var (principal, refusal) = await sessions.CheckKeyAsync(key, HttpContext.RequestAborted);
        if (principal is null)
        {
            // Anyone can fail to sign in: tallied per source like the API's 401s, not written one by one.
            await refusals.AuditAsync(HttpContext, RefusalKind.Unauthenticated, StatusCodes.Status401Unauthorized, refusal!);
            Error = refusal;
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Page();
        }
        await UiSession.SignInAsync(HttpContext, principal);
        HttpContext.User = principal.ToClaimsPrincipal();
        await UiSession.AuditAsync(HttpContext, "session.create", "session", AuditStatus.Success, StatusCodes.Status303SeeOther, null);
        return LocalRedirect303(ReturnUrl);
    }

    public async Task<IActionResult> OnPostSignOutAsync()
    {
        if (HttpContext.Principal() is not null)
            await UiSession.AuditAsync(HttpContext, "session.delete", "session", AuditStatus.Success, StatusCodes.Status303SeeOther, null);
        await HttpContext.SignOutAsync(UiSession.Scheme);
        return LocalRedirect303("/signin?signedOut=true");
    }

    /// <summary>303: the browser follows with a GET, so a reload does not post the form again.</summary>
    private StatusCodeResult LocalRedirect303(string url)
    {
        Response.Headers.Location = url;
        return new StatusCodeResult(StatusCodes.Status303SeeOther);
    }

    /// <summary>Only a path on this server: a return address pointing elsewhere would make the form an open redirect.</summary>
    private string LocalOrHome(string? url) => !string.IsNullOrEmpty(url) && Url.IsLocalUrl(url) && !url.StartsWith("/signin", StringComparison.OrdinalIgnoreCase) ? url : "/";
}
