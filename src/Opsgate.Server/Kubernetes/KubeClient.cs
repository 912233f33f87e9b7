using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Polly;
using Polly.Retry;

namespace Opsgate.Server.Kubernetes;

internal enum PatchType { Merge, StrategicMerge, Json }

internal sealed record WatchEvent(string Type, JsonObject Object);

/// <summary>
/// A small Kubernetes REST client for one cluster. KubernetesClient restores now; this one is kept for the rules on
/// untrusted kubeconfigs (no exec plugins or local files from uploads) and a lean hot path over the few calls Opsgate
/// makes (get, list, create, patch, delete, watch); worth revisiting if that surface grows.
/// Every call is bounded by <see cref="Timeout"/>, retries included; only idempotent reads are retried.
/// Error answers become <see cref="KubeApiException"/> carrying the API server's own message; failing to
/// reach the server becomes <see cref="KubeUnreachableException"/> naming the cluster.
/// </summary>
internal sealed class KubeClient : IDisposable
{
    private static readonly ResiliencePipeline Reads = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = 2,
            Delay = TimeSpan.FromMilliseconds(200),
            BackoffType = DelayBackoffType.Exponential,
            ShouldHandle = new PredicateBuilder()
                .Handle<KubeUnreachableException>(e => !e.TimedOut)
                .Handle<KubeApiException>(e => e.StatusCode is 429 or >= 500),
        })
        .Build();

    private readonly HttpClient _http;
    private readonly KubeTarget _target;
    private readonly ExecCredentialProvider? _exec;
    private readonly TokenFileSource? _tokenFile;

    public KubeClient(string cluster, KubeTarget target, TimeSpan timeout, TimeProvider time)
    {
        Cluster = cluster;
        _target = target;
        Timeout = timeout;
        _exec = target.Exec is null ? null : new ExecCredentialProvider(target.Exec, time);
        _tokenFile = target.TokenFile is null ? null : new TokenFileSource(target.TokenFile, target.Token ?? "", time);
        _http = new HttpClient(CreateHandler(target, timeout)) { BaseAddress = target.Server, Timeout = System.Threading.Timeout.InfiniteTimeSpan };
    }

    public string Cluster { get; }
    public TimeSpan Timeout { get; }
    public Uri Server => _target.Server;

    public Task<JsonObject> VersionAsync(CancellationToken ct) => ReadAsync("/version", ct);

    public Task<JsonObject> GetAsync(KubeResource resource, string? ns, string name, CancellationToken ct) =>
        ReadAsync(resource.Path(ns, name), ct);

    public Task<JsonObject> ListAsync(KubeResource resource, string? ns, CancellationToken ct, string? labelSelector = null, string? fieldSelector = null)
    {
        var query = new List<string>();
        if (labelSelector is not null)
            query.Add("labelSelector=" + Uri.EscapeDataString(labelSelector));
        if (fieldSelector is not null)
            query.Add("fieldSelector=" + Uri.EscapeDataString(fieldSelector));
        return ReadAsync(resource.Path(ns) + (query.Count > 0 ? "?" + string.Join('&', query) : ""), ct);
    }

    public Task<JsonObject> CreateAsync(KubeResource resource, string? ns, JsonObject body, bool dryRun, CancellationToken ct) =>
        WriteAsync(HttpMethod.Post, resource.Path(ns) + DryRun(dryRun, first: true), body, "application/json", ct);

    public Task<JsonObject> PatchAsync(KubeResource resource, string? ns, string name, JsonNode patch, PatchType type, bool dryRun, CancellationToken ct, string? subresource = null) =>
        WriteAsync(HttpMethod.Patch, resource.Path(ns, name, subresource) + DryRun(dryRun, first: true), patch, type switch
        {
            PatchType.Merge => "application/merge-patch+json",
            PatchType.StrategicMerge => "application/strategic-merge-patch+json",
            _ => "application/json-patch+json",
        }, ct);

    public Task<JsonObject> DeleteAsync(KubeResource resource, string? ns, string name, bool dryRun, CancellationToken ct, string propagationPolicy = "Background")
    {
        var options = new JsonObject { ["kind"] = "DeleteOptions", ["apiVersion"] = "v1", ["propagationPolicy"] = propagationPolicy };
        if (dryRun)
            options["dryRun"] = new JsonArray("All");
        return WriteAsync(HttpMethod.Delete, resource.Path(ns, name) + DryRun(dryRun, first: true), options, "application/json", ct);
    }

    /// <summary>Sets replicas through the scale subresource, as <c>kubectl scale</c> does.</summary>
    public Task<JsonObject> ScaleAsync(KubeResource resource, string ns, string name, int replicas, bool dryRun, CancellationToken ct) =>
        PatchAsync(resource, ns, name, new JsonObject { ["spec"] = new JsonObject { ["replicas"] = replicas } }, PatchType.Merge, dryRun, ct, "scale");

    /// <summary>A rollout restart: a new pod-template annotation makes the controller replace every pod, as <c>kubectl rollout restart</c> does.</summary>
    public Task<JsonObject> RestartAsync(KubeResource resource, string ns, string name, DateTimeOffset at, bool dryRun, CancellationToken ct) =>
        PatchAsync(resource, ns, name, new JsonObject
        {
            ["spec"] = new JsonObject
            {
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject
                    {
                        ["annotations"] = new JsonObject
                        {
                            ["kubectl.kubernetes.io/restartedAt"] = at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
                        },
                    },
                },
            },
        }, PatchType.StrategicMerge, dryRun, ct);

    /// <summary>
    /// Streams watch events until the server ends the stream or <paramref name="ct"/> is cancelled. The server must
    /// start answering within <see cref="Timeout"/> (a watch may then stay open as long as the caller likes).
    /// </summary>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(
        KubeResource resource, string? ns, [EnumeratorCancellation] CancellationToken ct,
        string? labelSelector = null, string? fieldSelector = null, string? resourceVersion = null)
    {
        var query = "?watch=true&allowWatchBookmarks=false";
        if (labelSelector is not null)
            query += "&labelSelector=" + Uri.EscapeDataString(labelSelector);
        if (fieldSelector is not null)
            query += "&fieldSelector=" + Uri.EscapeDataString(fieldSelector);
        if (resourceVersion is not null)
            query += "&resourceVersion=" + Uri.EscapeDataString(resourceVersion);
        using var response = await OpenWatchAsync(resource.Path(ns) + query, ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct), Encoding.UTF8);
        while (await ReadWatchLineAsync(reader, ct) is { } line)
        {
            if (line.Length == 0)
                continue;
            var node = JsonNode.Parse(line)!;
            var type = node["type"]?.GetValue<string>() ?? "";
            if (type == "ERROR")
                throw new KubeApiException(node["object"]?["code"]?.GetValue<int>() ?? 500, node["object"]?["reason"]?.GetValue<string>() ?? "", node["object"]?["message"]?.GetValue<string>() ?? "watch failed");
            yield return new WatchEvent(type, node["object"]!.AsObject());
        }
    }

    /// <summary>Sends the watch request; only the wait for the response headers is bounded by <see cref="Timeout"/>.</summary>
    private async Task<HttpResponseMessage> OpenWatchAsync(string path, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Timeout);
        HttpResponseMessage response;
        try
        {
            using var request = await NewRequestAsync(HttpMethod.Get, path, null, null, timeout.Token);
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw TimedOut();
        }
        if (response.IsSuccessStatusCode)
            return response;
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.Unauthorized)
                ForgetCredentials();
            throw await ErrorAsync(response, ct);
        }
    }

    /// <summary>A stream the server (or the network) cut off mid-way means the cluster went away, not a bug in the caller.</summary>
    private async Task<string?> ReadWatchLineAsync(StreamReader reader, CancellationToken ct)
    {
        try
        {
            return await reader.ReadLineAsync(ct);
        }
        catch (IOException e) when (!ct.IsCancellationRequested)
        {
            throw new KubeUnreachableException($"cluster '{Cluster}' ({Server}) is unreachable: the watch stream broke off: {e.Message}", timedOut: false, e);
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _exec?.Dispose();
    }

    private static string DryRun(bool dryRun, bool first) => dryRun ? (first ? "?dryRun=All" : "&dryRun=All") : "";

    private async Task<JsonObject> ReadAsync(string path, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Timeout);
        try
        {
            return await Reads.ExecuteAsync(async token => await SendAsync(HttpMethod.Get, path, null, null, token), timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw TimedOut();
        }
    }

    private async Task<JsonObject> WriteAsync(HttpMethod method, string path, JsonNode? body, string contentType, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Timeout);
        try
        {
            return await SendAsync(method, path, body, contentType, timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw TimedOut();
        }
    }

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, JsonNode? body, string? contentType, CancellationToken ct)
    {
        using var request = await NewRequestAsync(method, path, body, contentType, ct);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                if (response.StatusCode == HttpStatusCode.Unauthorized)
                    ForgetCredentials();
                throw await ErrorAsync(response, ct);
            }
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            return (bytes.Length == 0 ? null : JsonNode.Parse(bytes) as JsonObject) ?? [];
        }
    }

    private async Task<HttpRequestMessage> NewRequestAsync(HttpMethod method, string path, JsonNode? body, string? contentType, CancellationToken ct)
    {
        var request = new HttpRequestMessage(method, path);
        // Constant values: added as text, not parsed into header objects on every request.
        request.Headers.TryAddWithoutValidation("Accept", "application/json");
        request.Headers.TryAddWithoutValidation("User-Agent", "opsgate/1.0");
        var token = _exec is not null ? await _exec.GetTokenAsync(ct) : _tokenFile?.Get() ?? _target.Token;
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body));
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType ?? "application/json");
        }
        return request;
    }

    /// <summary>After a 401: the next request asks the exec plugin again, or re-reads the token file.</summary>
    private void ForgetCredentials()
    {
        _exec?.Invalidate();
        _tokenFile?.Invalidate();
    }

    private static async Task<KubeApiException> ErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var code = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            if (JsonNode.Parse(text) is JsonObject status && status["kind"]?.GetValue<string>() == "Status")
            {
                return new KubeApiException(code, status["reason"]?.GetValue<string>() ?? response.StatusCode.ToString(),
                    status["message"]?.GetValue<string>() ?? response.ReasonPhrase ?? "error");
            }
        }
        catch (JsonException)
        {
            // Not a Status document (a proxy in between, say); fall through to the raw text.
        }
        var snippet = text.Length > 200 ? text[..200] + "…" : text;
        return new KubeApiException(code, response.StatusCode.ToString(), $"{(int)response.StatusCode} {response.ReasonPhrase}: {snippet}".Trim());
    }

    private KubeUnreachableException Unreachable(HttpRequestException e)
    {
        var why = e.InnerException is System.Security.Authentication.AuthenticationException
            ? "TLS handshake failed: " + (e.InnerException?.Message ?? e.Message)
            : e.Message;
        return new KubeUnreachableException($"cluster '{Cluster}' ({Server}) is unreachable: {why}", timedOut: false, e);
    }

    private KubeUnreachableException TimedOut() =>
        new($"cluster '{Cluster}' ({Server}) did not answer within {Timeout.TotalSeconds:0.###} s", timedOut: true);

    private static SocketsHttpHandler CreateHandler(KubeTarget target, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = 64,
            AutomaticDecompression = DecompressionMethods.None,
        };
        if (target.TlsServerName is not null)
            handler.SslOptions.TargetHost = target.TlsServerName;
        if (target.InsecureSkipTlsVerify)
        {
#pragma warning disable CA5359 // The kubeconfig explicitly says insecure-skip-tls-verify, as kubectl honours it.
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
        }
        else if (target.CaPem is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPem(target.CaPem);
            if (roots.Count == 0)
                throw new KubeconfigException("certificate-authority holds no PEM certificate");
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is not null && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0 && ChainsTo(certificate, roots);
        }
        if (target.ClientCertificatePem is not null || target.ClientKeyPem is not null)
        {
            if (target.ClientCertificatePem is null || target.ClientKeyPem is null)
                throw new KubeconfigException("a client certificate needs both client-certificate(-data) and client-key(-data)");
            X509Certificate2 certificate;
            try
            {
                using var pem = X509Certificate2.CreateFromPem(target.ClientCertificatePem, target.ClientKeyPem);
                // Re-import so the private key is usable by the TLS stack on every platform.
                certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }
            catch (System.Security.Cryptography.CryptographicException e)
            {
                throw new KubeconfigException($"the client certificate or key is not valid PEM: {e.Message}");
            }
            handler.SslOptions.ClientCertificates = [certificate];
        }
        return handler;
    }

    private static bool ChainsTo(X509Certificate certificate, X509Certificate2Collection roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
