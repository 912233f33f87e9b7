using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Auth;

/// <summary>
/// Makes sure an administrator can get in on first start: installs <c>Auth:BootstrapAdminKey</c> if set,
/// otherwise, when the database has no keys at all, generates one and prints it once to standard output
/// (not to the log: logs must never hold secrets). With JSON logs it is the <c>BootstrapAdminKey</c> field of one line.
/// </summary>
internal sealed class BootstrapKey(ApiKeyStore keys, IOptions<AuthOptions> options, StartupConsole console)
{
    public async Task EnsureAsync(CancellationToken ct)
    {
        if (options.Value.BootstrapAdminKey is { Length: > 0 } configured)
        {
            await keys.InstallBootstrapAsync(configured, ct);
            return;
        }
        if (await keys.AnyAsync(ct))
            return;
        var key = ApiKeyStore.NewKey();
        await keys.InstallBootstrapAsync(key, ct);
        console.Print(
            $"""

            ================================================================
            No API keys existed, so an admin key was generated. It is shown
            only this once; store it now (it cannot be recovered):

                {key}

            Use it as the X-API-Key header. Set OPSGATE_AUTH__BOOTSTRAPADMINKEY
            to choose the key yourself.
            ================================================================

            """,
            "No API keys existed, so an admin key was generated: BootstrapAdminKey. It is shown only this once; store it now " +
            "(it cannot be recovered). Use it as the X-API-Key header. Set OPSGATE_AUTH__BOOTSTRAPADMINKEY to choose the key yourself.",
            ("BootstrapAdminKey", key));
    }
}
