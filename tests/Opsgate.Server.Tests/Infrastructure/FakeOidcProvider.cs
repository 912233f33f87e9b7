using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>
/// An OpenID provider shaped like a Keycloak realm, listening on a loopback port: it serves the discovery
/// document and a JWKS with one RSA public key, and signs tokens for tests with the matching private key.
/// </summary>
public sealed class FakeOidcProvider : IAsyncDisposable
{
    public const string Audience = "opsgate";
    private const string RealmPath = "/realms/ops";

    private readonly WebApplication _app;
    private readonly RSA _rsa;
    private readonly RsaSecurityKey _key;
    private bool _stopped;

    private FakeOidcProvider(WebApplication app, RSA rsa, RsaSecurityKey key)
    {
        _app = app;
        _rsa = rsa;
        _key = key;
        Issuer = app.ListeningAddresses().First() + RealmPath;
    }

    /// <summary>The issuer, which is also the authority Opsgate is configured with.</summary>
    public string Issuer { get; }

    /// <summary>The arguments that point Opsgate at this provider; more (RoleClaim, RoleMap) can follow.</summary>
    public IEnumerable<string> OpsgateArgs(params string[] more) =>
        [$"--Auth:Oidc:Authority={Issuer}", $"--Auth:Oidc:Audience={Audience}", "--Auth:Oidc:RequireHttpsMetadata=false", .. more];

    public static async Task<FakeOidcProvider> StartAsync()
    {
        var rsa = RSA.Create(2048);
        var key = new RsaSecurityKey(rsa) { KeyId = "test-key-1" };
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FakeOidcProvider? provider = null;
        app.MapGet(RealmPath + "/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = provider!.Issuer,
            ["jwks_uri"] = provider.Issuer + "/protocol/openid-connect/certs",
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        app.MapGet(RealmPath + "/protocol/openid-connect/certs", () =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = key.KeyId });
            return Results.Json(new { keys = new[] { new { kty = jwk.Kty, use = "sig", alg = "RS256", kid = jwk.Kid, n = jwk.N, e = jwk.E } } });
        });
        await app.StartAsync();
        provider = new FakeOidcProvider(app, rsa, key);
        return provider;
    }

    /// <summary>
    /// A signed RS256 token for <paramref name="subject"/> (null: no <c>sub</c>) with the given extra claims, valid
    /// for an hour unless <paramref name="expires"/> says otherwise. The overrides make tokens Opsgate must refuse.
    /// </summary>
    public string Token(
        string? subject,
        IDictionary<string, object> claims,
        DateTime? expires = null,
        string? issuer = null,
        string? audience = null,
        SecurityKey? signingKey = null)
    {
        var now = DateTime.UtcNow;
        var until = expires ?? now.AddHours(1);
        var issuedAt = until < now ? until.AddHours(-1) : now;
        var all = new Dictionary<string, object>(claims);
        if (subject is not null)
            all["sub"] = subject;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Issuer,
            Audience = audience ?? Audience,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = until,
            Claims = all,
            SigningCredentials = new SigningCredentials(signingKey ?? _key, SecurityAlgorithms.RsaSha256),
        });
    }

    /// <summary>A Keycloak access token: roles under <c>realm_access.roles</c>.</summary>
    public string KeycloakToken(string subject, string username, params string[] roles) =>
        Token(subject, new Dictionary<string, object>
        {
            ["preferred_username"] = username,
            ["realm_access"] = new Dictionary<string, object> { ["roles"] = roles },
        });

    /// <summary>An Okta access token: group names under <c>groups</c>.</summary>
    public string OktaToken(string subject, string username, params string[] groups) =>
        Token(subject, new Dictionary<string, object> { ["preferred_username"] = username, ["groups"] = groups });

    /// <summary>Stops answering; the port refuses connections from then on.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
            return;
        _stopped = true;
        await _app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        _rsa.Dispose();
    }
}
