using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using KubeSim;
using Microsoft.AspNetCore.Http;
using Opsgate.Server.Kubernetes;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Kubernetes;

/// <summary>How <see cref="KubeClient"/> connects: unreachable and hung servers, retries, TLS and credentials.</summary>
public sealed partial class KubeClientTests
{
    /// <summary>A kubeconfig with one context "lab"; <paramref name="cluster"/> and <paramref name="user"/> are extra YAML lines.</summary>
    private static string KubeconfigFor(Uri server, string[] cluster, string[] user)
    {
        var yaml = new StringBuilder()
            .AppendLine("apiVersion: v1")
            .AppendLine("kind: Config")
            .AppendLine("current-context: lab")
            .AppendLine("clusters:")
            .AppendLine("- name: lab")
            .AppendLine("  cluster:")
            .AppendLine(CultureInfo.InvariantCulture, $"    server: {server.ToString().TrimEnd('/')}");
        foreach (var line in cluster) yaml.AppendLine("    " + line);
        yaml.AppendLine("users:").AppendLine("- name: someone").AppendLine("  user:");
        foreach (var line in user) yaml.AppendLine("    " + line);
        yaml.AppendLine("contexts:").AppendLine("- name: lab").AppendLine("  context: {cluster: lab, user: someone}");
        return yaml.ToString();
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static async Task<List<string>> NamespacesAsync(KubeClient client) => Names(await client.ListAsync(KubeResource.Namespaces, null, default));

    [Fact]
    public async Task A_stopped_cluster_is_unreachable_and_the_error_names_it()
    {
        await using var sim = await StartSimAsync(Workloads);
        using var client = ClientFor(sim.KubeconfigYaml(), cluster: "kind-prod");
        Assert.Contains("lab", await NamespacesAsync(client));
        await sim.StopAsync();

        var read = await Assert.ThrowsAsync<KubeUnreachableException>(() => client.GetAsync(KubeResource.Deployments, "lab", "web", default));
        Assert.False(read.TimedOut);
        Assert.StartsWith($"cluster 'kind-prod' ({sim.BaseAddress}) is unreachable: ", read.Message, StringComparison.Ordinal);
        Assert.Contains("refused", read.Message, StringComparison.OrdinalIgnoreCase);

        var write = await Assert.ThrowsAsync<KubeUnreachableException>(() => client.ScaleAsync(KubeResource.Deployments, "lab", "web", 2, dryRun: false, default));
        Assert.StartsWith($"cluster 'kind-prod' ({sim.BaseAddress}) is unreachable: ", write.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_within_the_configured_timeout()
    {
        using var silent = new SilentServer();
        using var client = ClientFor(KubeconfigFor(silent.BaseAddress, [], ["token: t"]), timeout: TimeSpan.FromSeconds(1));
        var expected = $"cluster 'lab' ({silent.BaseAddress}) did not answer within 1 s";

        async Task AssertTimesOutAsync(Func<Task> call)
        {
            var clock = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<KubeUnreachableException>(() => call().WaitAsync(Patience));
            Assert.True(e.TimedOut);
            Assert.Equal(expected, e.Message);
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3));
        }

        await AssertTimesOutAsync(() => client.VersionAsync(default));
        await AssertTimesOutAsync(() => client.PatchAsync(KubeResource.Pods, "lab", "p", new JsonObject(), PatchType.Merge, dryRun: false, default));
        await AssertTimesOutAsync(async () =>
        {
            await foreach (var _ in client.WatchAsync(KubeResource.Pods, "lab", default))
            {
                Assert.Fail("a silent server sent a watch event");
            }
        });
    }

    [Fact]
    public async Task Reads_are_retried_on_503_and_writes_are_sent_once()
    {
        await using var flaky = await StubHttpServer.StartAsync((ctx, n) => n < 2
            ? StubHttpServer.StatusAsync(ctx, 503, "ServiceUnavailable", "etcdserver: leader changed")
            : ctx.Response.WriteAsJsonAsync(new { major = "1", minor = "32", gitVersion = "v1.32.0" }));
        using (var client = ClientFor(KubeconfigFor(flaky.BaseAddress, [], ["token: t"])))
        {
            var version = await client.VersionAsync(default);
            Assert.Equal("v1.32.0", Str(version, "gitVersion"));
            Assert.Equal(3, flaky.Requests);
        }

        await using var down = await StubHttpServer.StartAsync((ctx, _) => StubHttpServer.StatusAsync(ctx, 503, "ServiceUnavailable", "etcdserver: leader changed"));
        using var writer = ClientFor(KubeconfigFor(down.BaseAddress, [], ["token: t"]));
        var patch = await Assert.ThrowsAsync<KubeApiException>(() => writer.PatchAsync(KubeResource.Deployments, "lab", "web", new JsonObject(), PatchType.Merge, dryRun: false, default));
        Assert.Equal((503, "ServiceUnavailable", "etcdserver: leader changed"), (patch.StatusCode, patch.Reason, patch.Message));
        Assert.Equal(1, down.Requests);
        await Assert.ThrowsAsync<KubeApiException>(() => writer.CreateAsync(KubeResource.Secrets, "lab", new JsonObject(), dryRun: false, default));
        await Assert.ThrowsAsync<KubeApiException>(() => writer.DeleteAsync(KubeResource.Pods, "lab", "p", dryRun: false, default));
        await Assert.ThrowsAsync<KubeApiException>(() => writer.ScaleAsync(KubeResource.Deployments, "lab", "web", 1, dryRun: false, default));
        Assert.Equal(4, down.Requests);

        // A read gives up after three attempts; an answer that retrying cannot change is not retried.
        await Assert.ThrowsAsync<KubeApiException>(() => writer.GetAsync(KubeResource.Pods, "lab", "p", default));
        Assert.Equal(7, down.Requests);
        await using var missing = await StubHttpServer.StartAsync((ctx, _) => StubHttpServer.StatusAsync(ctx, 404, "NotFound", "pods \"p\" not found"));
        using var reader = ClientFor(KubeconfigFor(missing.BaseAddress, [], ["token: t"]));
        await Assert.ThrowsAsync<KubeApiException>(() => reader.GetAsync(KubeResource.Pods, "lab", "p", default));
        Assert.Equal(1, missing.Requests);
    }

    [Fact]
    public async Task An_error_body_that_is_not_a_Status_is_quoted()
    {
        await using var proxy = await StubHttpServer.StartAsync(async (ctx, _) =>
        {
            ctx.Response.StatusCode = 403;
            await ctx.Response.WriteAsync("<html>blocked by the corporate proxy</html>");
        });
        using var client = ClientFor(KubeconfigFor(proxy.BaseAddress, [], ["token: t"]));
        var e = await Assert.ThrowsAsync<KubeApiException>(() => client.GetAsync(KubeResource.Pods, "lab", "p", default));
        Assert.Equal((403, "403 Forbidden: <html>blocked by the corporate proxy</html>"), (e.StatusCode, e.Message));
    }

    [Fact]
    public async Task A_watch_stream_cut_off_midway_is_reported_as_unreachable()
    {
        // The connection is cut once the client has read the first event (a reset would discard unread data).
        var firstSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var cut = await StubHttpServer.StartAsync(async (ctx, _) =>
        {
            await ctx.Response.WriteAsync("""{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"one"}}}""" + "\n");
            await ctx.Response.Body.FlushAsync();
            await firstSeen.Task.WaitAsync(Patience);
            ctx.Abort();
        });
        using var client = ClientFor(KubeconfigFor(cut.BaseAddress, [], ["token: t"]));
        var seen = new List<string>();
        var e = await Assert.ThrowsAsync<KubeUnreachableException>(async () =>
        {
            await foreach (var w in client.WatchAsync(KubeResource.Pods, "lab", default))
            {
                seen.Add($"{w.Type} {Str(w.Object, "metadata", "name")}");
                firstSeen.TrySetResult();
            }
        });
        Assert.Equal(["ADDED one"], seen);
        Assert.StartsWith($"cluster 'lab' ({cut.BaseAddress}) is unreachable: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_is_verified_against_the_kubeconfig_ca_or_skipped_when_it_says_so()
    {
        await using var sim = await StartSimAsync(options: new KubeSimOptions { Tls = true });
        Assert.Equal("https", sim.BaseAddress.Scheme);
        using (var client = ClientFor(sim))
        {
            Assert.Equal("v1.32.0-kubesim", Str(await client.VersionAsync(default), "gitVersion"));
            Assert.Contains("lab", await NamespacesAsync(client));
        }

        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=not-the-kubesim-ca", otherKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var otherCa = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        foreach (var cluster in new[] { new[] { $"certificate-authority-data: {B64(otherCa.ExportCertificatePem())}" }, [] })
        {
            using var client = ClientFor(KubeconfigFor(sim.BaseAddress, cluster, ["token: kubesim-token"]));
            var e = await Assert.ThrowsAsync<KubeUnreachableException>(() => client.VersionAsync(default));
            Assert.False(e.TimedOut);
            Assert.StartsWith($"cluster 'lab' ({sim.BaseAddress}) is unreachable: TLS handshake failed: ", e.Message, StringComparison.Ordinal);
        }

        using (var insecure = ClientFor(KubeconfigFor(sim.BaseAddress, ["insecure-skip-tls-verify: true"], ["token: kubesim-token"])))
        {
            Assert.Contains("lab", await NamespacesAsync(insecure));
        }

        using var dir = new TempDir();
        var caFile = Path.Combine(dir.Path, "ca.crt");
        await File.WriteAllTextAsync(caFile, sim.CaCertificatePem);
        using var fromFile = ClientFor(KubeconfigFor(sim.BaseAddress, [$"certificate-authority: {caFile}"], ["token: kubesim-token"]));
        Assert.Contains("lab", await NamespacesAsync(fromFile));
    }

    [Fact]
    public async Task Client_certificate_and_key_files_authenticate()
    {
        await using var sim = await StartSimAsync(options: new KubeSimOptions { ClientCertificates = true, Token = null });
        var embedded = Kubeconfig.Parse(sim.KubeconfigYaml()).Resolve(null, trusted: false);
        using var dir = new TempDir();
        string Write(string name, string content)
        {
            var path = Path.Combine(dir.Path, name);
            File.WriteAllText(path, content);
            return path;
        }
        var ca = Write("ca.crt", embedded.CaPem!);
        var cert = Write("client.crt", embedded.ClientCertificatePem!);
        var key = Write("client.key", embedded.ClientKeyPem!);

        using (var client = ClientFor(KubeconfigFor(sim.BaseAddress, [$"certificate-authority: {ca}"], [$"client-certificate: {cert}", $"client-key: {key}"])))
        {
            Assert.Contains("lab", await NamespacesAsync(client));
        }

        // Without a certificate, the server refuses the request with its own Status.
        using var anonymous = ClientFor(KubeconfigFor(sim.BaseAddress, [$"certificate-authority: {ca}"], ["username: nobody"]));
        var e = await Assert.ThrowsAsync<KubeApiException>(() => NamespacesAsync(anonymous));
        Assert.Equal((401, "Unauthorized"), (e.StatusCode, e.Reason));

        var halfPair = Assert.Throws<KubeconfigException>(() => ClientFor(KubeconfigFor(sim.BaseAddress, [$"certificate-authority: {ca}"], [$"client-certificate: {cert}"])));
        Assert.Contains("needs both client-certificate(-data) and client-key(-data)", halfPair.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_file_authenticates_and_is_read_again_when_rotated()
    {
        await using var sim = await StartSimAsync();
        using var dir = new TempDir();
        var token = Path.Combine(dir.Path, "token");
        await File.WriteAllTextAsync(token, "kubesim-token\n");
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var client = ClientFor(KubeconfigFor(sim.BaseAddress, [], [$"tokenFile: {token}"]), time: clock);
        Assert.Contains("lab", await NamespacesAsync(client));

        // Rotated to a token the server does not know: read again after a minute, as client-go does.
        await File.WriteAllTextAsync(token, "revoked-token\n");
        Assert.Contains("lab", await NamespacesAsync(client));
        clock.Advance(TimeSpan.FromSeconds(61));
        var e = await Assert.ThrowsAsync<KubeApiException>(() => NamespacesAsync(client));
        Assert.Equal((401, "Unauthorized", "Unauthorized"), (e.StatusCode, e.Reason, e.Message));

        // After a 401 the file is read on the next request, without waiting for the minute.
        await File.WriteAllTextAsync(token, "kubesim-token\n");
        Assert.Contains("lab", await NamespacesAsync(client));
    }

    [Fact]
    public async Task An_exec_credential_the_server_refuses_is_fetched_again()
    {
        await using var sim = await StartSimAsync();
        using var dir = new TempDir();
        var plugin = Path.Combine(dir.Path, "plugin.sh");
        var token = Path.Combine(dir.Path, "token");
        await File.WriteAllTextAsync(plugin, """
            printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat "$1")"
            """);
        await File.WriteAllTextAsync(token, "expired-token");
        using var client = ClientFor(sim.ExecKubeconfigYaml("/bin/sh", plugin, token));

        var e = await Assert.ThrowsAsync<KubeApiException>(() => NamespacesAsync(client));
        Assert.Equal(401, e.StatusCode);
        await File.WriteAllTextAsync(token, "kubesim-token");
        Assert.Contains("lab", await NamespacesAsync(client));
    }

    [Theory]
    [InlineData(true, 3)]
    [InlineData(false, 1)]
    public async Task An_exec_plugin_runs_again_once_its_credential_expires(bool expired, int expectedRuns)
    {
        await using var sim = await StartSimAsync();
        using var dir = new TempDir();
        var plugin = Path.Combine(dir.Path, "plugin.sh");
        var runs = Path.Combine(dir.Path, "runs");
        // One line per run (the ExecCredential request the plugin was given), then the credential on stdout.
        await File.WriteAllTextAsync(plugin, """
            printf '%s\n' "$KUBERNETES_EXEC_INFO" >> "$1"
            printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"kubesim-token","expirationTimestamp":"%s"}}' "$2"
            """);
        var expires = (expired ? DateTimeOffset.UtcNow.AddHours(-1) : DateTimeOffset.UtcNow.AddHours(1)).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        using var client = ClientFor(sim.ExecKubeconfigYaml("/bin/sh", plugin, runs, expires));

        for (var i = 0; i < 3; i++)
            Assert.Contains("lab", await NamespacesAsync(client));

        var lines = await File.ReadAllLinesAsync(runs);
        Assert.Equal(expectedRuns, lines.Length);
        Assert.All(lines, line => Assert.Equal(
            """{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}""", line));
    }
}
