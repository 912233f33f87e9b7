using System.Collections.Concurrent;
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
/// document and a JWKS with one RSA public key, and signs tokens for tests with the matching private key. For a
/// browser it also runs the authorization code flow: a login form (a user name is enough), codes bound to the
/// client, redirect URI and PKCE challenge (S256 only, as Keycloak enforces for public clients), and a token endpoint
/// answering with an ID token and a Keycloak-style access token carrying the user's realm roles.
/// </summary>
public sealed class FakeOidcProvider : IAsyncDisposable
{
    public const string Audience = "opsgate";
    private const string RealmPath = "/realms/ops";

    private readonly WebApplication _app;
    private readonly RSA _rsa;
    private readonly RsaSecurityKey _key;
    private readonly ConcurrentDictionary<string, Grant> _codes = new(StringComparer.Ordinal);
    private bool _stopped;

    private sealed record Grant(string ClientId, string RedirectUri, string Challenge, string? Nonce, string User);

    /// <summary>The users who may sign in at the login form, with their realm roles.</summary>
    public ConcurrentDictionary<string, string[]> Users { get; } = new(StringComparer.Ordinal);

    /// <summary>The query of every authorization request received, in order: what the client asked for.</summary>
    public ConcurrentQueue<IReadOnlyDictionary<string, string>> AuthorizationRequests { get; } = new();

    /// <summary>Token requests refused, with the OAuth error sent back.</summary>
    public ConcurrentQueue<string> RefusedTokenRequests { get; } = new();

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
            ["authorization_endpoint"] = provider.Issuer + "/protocol/openid-connect/auth",
            ["token_endpoint"] = provider.Issuer + "/protocol/openid-connect/token",
            ["response_types_supported"] = new[] { "code" },
            ["subject_types_supported"] = new[] { "public" },
            ["code_challenge_methods_supported"] = new[] { "S256" },
        }));
        app.MapGet(RealmPath + "/protocol/openid-connect/auth", (HttpRequest request) => provider!.LoginForm(request));
        app.MapPost(RealmPath + "/protocol/openid-connect/auth", (HttpRequest request) => provider!.LogInAsync(request));
        app.MapPost(RealmPath + "/protocol/openid-connect/token", (HttpRequest request) => provider!.TokenAsync(request));
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

    /// <summary>The login page: a user name and a button, carrying the authorization request along.</summary>
    private IResult LoginForm(HttpRequest request)
    {
        var query = request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal);
        AuthorizationRequests.Enqueue(query);
        var hidden = string.Concat(query.Select(q => $"<input type=\"hidden\" name=\"{Html(q.Key)}\" value=\"{Html(q.Value)}\">"));
        return Results.Content(
            "<!DOCTYPE html><html lang=\"en\"><head><title>Sign in to ops</title></head><body><main><h1>Sign in to ops</h1>" +
            $"<form method=\"post\">{hidden}<label for=\"username\">Username</label><input id=\"username\" name=\"username\">" +
            "<button type=\"submit\">Log in</button></form></main></body></html>", "text/html; charset=utf-8");
    }

    private async Task<IResult> LogInAsync(HttpRequest request)
    {
        var form = await request.ReadFormAsync();
        string Field(string name) => form[name].ToString();
        var redirect = Field("redirect_uri");
        if (Field("response_type") != "code" || Field("code_challenge_method") != "S256" || Field("code_challenge").Length < 43 || redirect.Length == 0)
            return Results.BadRequest("invalid_request: code flow with an S256 PKCE challenge is required");
        var separator = redirect.Contains('?', StringComparison.Ordinal) ? "&" : "?";
        if (!Users.ContainsKey(Field("username")))
            return Results.Redirect($"{redirect}{separator}error=access_denied&error_description=unknown+user&state={Uri.EscapeDataString(Field("state"))}");
        var code = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _codes[code] = new Grant(Field("client_id"), redirect, Field("code_challenge"), form["nonce"].FirstOrDefault(), Field("username"));
        return Results.Redirect($"{redirect}{separator}code={code}&state={Uri.EscapeDataString(Field("state"))}&iss={Uri.EscapeDataString(Issuer)}");
    }

    private async Task<IResult> TokenAsync(HttpRequest request)
    {
        var form = await request.ReadFormAsync();
        string Field(string name) => form[name].ToString();
        IResult Refuse(string error)
        {
            RefusedTokenRequests.Enqueue(error);
            return Results.Json(new { error }, statusCode: StatusCodes.Status400BadRequest);
        }
        if (Field("grant_type") != "authorization_code" || !_codes.TryRemove(Field("code"), out var grant))
            return Refuse("invalid_grant");
        if (grant.ClientId != Field("client_id") || grant.RedirectUri != Field("redirect_uri"))
            return Refuse("invalid_client");
        var verifier = Field("code_verifier");
        if (verifier.Length < 43 || Base64UrlEncoder.Encode(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(verifier))) != grant.Challenge)
            return Refuse("invalid_grant: PKCE verification failed");
        var subject = "user-" + grant.User;
        var idClaims = new Dictionary<string, object> { ["preferred_username"] = grant.User };
        if (grant.Nonce is not null)
            idClaims["nonce"] = grant.Nonce;
        return Results.Json(new Dictionary<string, object>
        {
            ["access_token"] = KeycloakToken(subject, grant.User, Users[grant.User]),
            ["id_token"] = Token(subject, idClaims, audience: grant.ClientId),
            ["token_type"] = "Bearer",
            ["expires_in"] = 3600,
        });
    }

    private static string Html(string value) => System.Net.WebUtility.HtmlEncode(value);

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
