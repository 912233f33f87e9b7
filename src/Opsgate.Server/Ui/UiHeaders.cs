namespace Opsgate.Server.Ui;

/// <summary>
/// Headers on every console response: scripts, styles and connections only from this origin (no inline script, no
/// inline style, so an injected tag or attribute cannot run), no framing (clickjacking), no sniffing, no caching
/// of pages that show jobs and parameters.
/// </summary>
internal static class UiHeaders
{
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    public static void Apply(HttpResponse response)
    {
        var headers = response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XFrameOptions = "DENY";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "same-origin";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        // Set last, and only when nothing else did: antiforgery sets its own (and warns when it finds one set).
        response.OnStarting(static state =>
        {
            var r = (HttpResponse)state;
            if (!r.Headers.ContainsKey("Cache-Control"))
                r.Headers.CacheControl = "no-store";
            return Task.CompletedTask;
        }, response);
    }
}
