using System.Security.Cryptography;
using System.Text;
using KubeSim.Store;
using Microsoft.AspNetCore.Http;

namespace KubeSim.Security;

/// <summary>
/// Who may call: a client certificate from the test CA (when client certificates are on) or the bearer
/// token (when one is set) or a service account token KubeSim issued. With neither configured, every request is allowed.
/// </summary>
internal sealed class Authenticator(string? token, TestPki? clientCa, ServiceAccountTokens serviceAccounts)
{
    private readonly byte[]? _expected = token is null ? null : Encoding.UTF8.GetBytes("Bearer " + token);

    public bool IsAuthenticated(HttpContext ctx)
    {
        if (clientCa is not null && ctx.Connection.ClientCertificate is { } cert && clientCa.Issued(cert)) return true;
        if (_expected is null) return clientCa is null;
        var header = ctx.Request.Headers.Authorization.ToString();
        if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header), _expected)) return true;
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && serviceAccounts.IsValid(header["Bearer ".Length..]);
    }
}
