using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace KubeSim.Store;

/// <summary>
/// Service account tokens: issued by the TokenRequest subresource (with an expiry) or written into
/// <c>kubernetes.io/service-account-token</c> secrets by the token controller (valid while the secret
/// holds them). Either kind authenticates to KubeSim like the configured token.
/// </summary>
public sealed class ServiceAccountTokens
{
    public const string SecretType = "kubernetes.io/service-account-token";

    private readonly ConcurrentDictionary<string, DateTimeOffset> _issued = new(StringComparer.Ordinal);
    private readonly KubeStore _store;

    internal ServiceAccountTokens(KubeStore store) => _store = store;

    /// <summary>A new token for a service account, valid until the returned time.</summary>
    internal (string Token, DateTimeOffset Expires) Issue(string ns, string serviceAccount, TimeSpan lifetime)
    {
        var token = NewToken(ns, serviceAccount);
        var expires = _store.Time.GetUtcNow() + lifetime;
        _issued[token] = expires;
        return (token, expires);
    }

    internal static string NewToken(string ns, string serviceAccount) =>
        $"kubesim-sa.{ns}.{serviceAccount}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16))}";

    /// <summary>Whether <paramref name="token"/> is an unexpired issued token or the token of an existing token secret.</summary>
    public bool IsValid(string token)
    {
        if (_issued.TryGetValue(token, out var expires)) return expires > _store.Time.GetUtcNow();
        if (!token.StartsWith("kubesim-sa.", StringComparison.Ordinal)) return false;
        var encoded = Convert.ToBase64String(Encoding.UTF8.GetBytes(token));
        return _store.ListCore(ResourceTypes.Secrets, token.Split('.')[1], LabelSelector.Everything, FieldSelector.Everything).Items
            .Any(s => s.Str("type") == SecretType && s.Str("data", "token") == encoded);
    }

    /// <summary>The TokenRequest answer (authentication.k8s.io/v1) for POST serviceaccounts/{name}/token.</summary>
    internal JsonObject Request(string ns, string serviceAccount, JsonObject? request)
    {
        if (_store.GetCore(ResourceTypes.ServiceAccounts, ns, serviceAccount) is null)
        {
            throw KubeApiException.NotFound(ResourceTypes.ServiceAccounts, serviceAccount);
        }
        var seconds = request.Long("spec", "expirationSeconds") ?? 3600;
        if (seconds < 600)
        {
            throw new KubeApiException(422, "Invalid", $"TokenRequest.authentication.k8s.io \"{serviceAccount}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes");
        }
        var (token, expires) = Issue(ns, serviceAccount, TimeSpan.FromSeconds(seconds));
        return new JsonObject
        {
            ["kind"] = "TokenRequest",
            ["apiVersion"] = "authentication.k8s.io/v1",
            ["metadata"] = new JsonObject
            {
                ["name"] = serviceAccount,
                ["namespace"] = ns,
                ["creationTimestamp"] = JsonExtensions.Timestamp(_store.Time.GetUtcNow()),
            },
            ["spec"] = new JsonObject
            {
                ["audiences"] = request.At("spec", "audiences")?.DeepClone() ?? new JsonArray("https://kubernetes.default.svc.cluster.local"),
                ["expirationSeconds"] = seconds,
                ["boundObjectRef"] = request.At("spec", "boundObjectRef")?.DeepClone(),
            },
            ["status"] = new JsonObject
            {
                ["token"] = token,
                ["expirationTimestamp"] = JsonExtensions.Timestamp(expires),
            },
        };
    }
}
