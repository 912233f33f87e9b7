using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Opsgate.Server.Audit;

namespace Opsgate.Server.Ui;

/// <summary>
/// Refusals of console pages: without a session the browser goes to the sign-in form (and back afterwards); a
/// signed-in user the page's role refuses gets a page saying so, audited like the API's 403s. Everything else is
/// answered by the API's handler it wraps.
/// </summary>
internal sealed class UiDenials(IAuthorizationMiddlewareResultHandler api) : IAuthorizationMiddlewareResultHandler
{
    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Succeeded || !UiSession.IsConsole(context))
        {
            await api.HandleAsync(next, context, policy, result);
            return;
        }
        UiHeaders.Apply(context.Response);
        if (result.Challenged)
        {
            context.Response.Redirect(SignInUrl(context.Request));
            return;
        }
        var reasons = result.AuthorizationFailure?.FailureReasons.Select(r => r.Message).ToList();
        var detail = reasons is { Count: > 0 } ? string.Join("; ", reasons) : "you are not allowed to do this";
        await context.TryWriteAuditAsync(AuditStatus.Denied, StatusCodes.Status403Forbidden, detail);
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.WriteAsync(
            $"<!DOCTYPE html><html lang=\"en\"><head><title>Forbidden · Opsgate</title><link rel=\"stylesheet\" href=\"{UiAssets.CssUrl}\"></head>" +
            $"<body><main class=\"narrow\"><h1>Forbidden</h1><p>{HtmlEncoder.Default.Encode(detail)}</p><p><a href=\"/\">Back to the dashboard</a></p></main></body></html>");
    }

    /// <summary>The sign-in form, with the page asked for to return to (a local path only).</summary>
    public static string SignInUrl(HttpRequest request)
    {
        var back = request.PathBase + request.Path + request.QueryString;
        return back is "/" or "" ? "/signin" : "/signin?returnUrl=" + Uri.EscapeDataString(back);
    }
}
