using System.Net;
using System.Text;
using KubeSim.Api;
using KubeSim.Controllers;
using KubeSim.Security;
using KubeSim.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KubeSim;

/// <summary>
/// An in-memory kube-apiserver on 127.0.0.1 with the controllers Opsgate's tests rely on. Start one per
/// test (port 0), point a client at <see cref="KubeconfigYaml"/>, read or seed state through <see cref="Store"/>.
/// </summary>
public sealed class KubeSimServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ControllerHost _controllers;
    private readonly TestPki? _pki;
    private readonly CancellationTokenSource _stopping;
    private readonly KubeSimOptions _options;
    private bool _stopped;

    private KubeSimServer(WebApplication app, ControllerHost controllers, TestPki? pki, CancellationTokenSource stopping, KubeSimOptions options, KubeStore store)
    {
        _app = app;
        _controllers = controllers;
        _pki = pki;
        _stopping = stopping;
        _options = options;
        Store = store;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    public Uri BaseAddress { get; }

    public KubeStore Store { get; }

    /// <summary>The test CA in PEM when serving TLS, else null.</summary>
    public string? CaCertificatePem => _pki?.CaPem;

    public static async Task<KubeSimServer> StartAsync(KubeSimOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var tls = options.Tls || options.ClientCertificates;
        var pki = tls ? new TestPki() : null;
        var store = new KubeStore(TimeProvider.System);
        if (options.ManifestsYaml is { } manifests) store.Apply(manifests);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, options.Port, listen =>
            {
                if (pki is null) return;
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = pki.Server,
                    ClientCertificateMode = options.ClientCertificates ? ClientCertificateMode.AllowCertificate : ClientCertificateMode.NoCertificate,
                    // Any certificate gets through the handshake; the authenticator decides, so a bad one is a 401 Status.
                    ClientCertificateValidation = (_, _, _) => true,
                });
            });
        });
        var app = builder.Build();
        var stopping = new CancellationTokenSource();
        var authenticator = new Authenticator(options.Token, options.ClientCertificates ? pki : null, store.Tokens);
        var api = new KubeApi(authenticator, new ResourceHandlers(store, new WatchStreamer(store, stopping.Token)));
        app.Run(api.HandleAsync);

        var controllers = new ControllerHost(store, options, pki?.CaPem, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("KubeSim.Controllers"));
        controllers.Start();
        await app.StartAsync(ct);
        return new KubeSimServer(app, controllers, pki, stopping, options, store);
    }

    /// <summary>
    /// A complete kubeconfig (cluster, context "kubesim", user) for this server: the user authenticates with
    /// a client certificate issued to <paramref name="user"/> when client certificates are on, else with the token.
    /// </summary>
    public string KubeconfigYaml(string user = "admin")
    {
        var sb = new StringBuilder();
        sb.AppendLine("apiVersion: v1");
        sb.AppendLine("kind: Config");
        sb.AppendLine("clusters:");
        sb.AppendLine("- name: kubesim");
        sb.AppendLine("  cluster:");
        sb.AppendLine($"    server: {BaseAddress.ToString().TrimEnd('/')}");
        if (_pki is not null) sb.AppendLine($"    certificate-authority-data: {Base64(_pki.CaPem)}");
        sb.AppendLine("contexts:");
        sb.AppendLine("- name: kubesim");
        sb.AppendLine("  context:");
        sb.AppendLine("    cluster: kubesim");
        sb.AppendLine($"    user: {user}");
        sb.AppendLine("    namespace: default");
        sb.AppendLine("current-context: kubesim");
        sb.AppendLine("users:");
        sb.AppendLine($"- name: {user}");
        sb.AppendLine("  user:");
        if (_options.ClientCertificates && _pki is not null)
        {
            var (cert, key) = _pki.IssueClient(user);
            sb.AppendLine($"    client-certificate-data: {Base64(cert)}");
            sb.AppendLine($"    client-key-data: {Base64(key)}");
        }
        else
        {
            sb.AppendLine($"    token: {_options.Token ?? ""}");
        }
        return sb.ToString();
    }

    /// <summary>
    /// A kubeconfig whose user gets its credentials from an exec plugin (client.authentication.k8s.io/v1),
    /// e.g. a script printing an ExecCredential with <see cref="KubeSimOptions.Token"/>.
    /// </summary>
    public string ExecKubeconfigYaml(string command, params string[] args)
    {
        var config = KubeconfigYaml("exec");
        var cut = config.IndexOf("users:", StringComparison.Ordinal);
        var sb = new StringBuilder(config[..cut]);
        sb.AppendLine("users:");
        sb.AppendLine("- name: exec");
        sb.AppendLine("  user:");
        sb.AppendLine("    exec:");
        sb.AppendLine("      apiVersion: client.authentication.k8s.io/v1");
        sb.AppendLine($"      command: {command}");
        sb.AppendLine("      interactiveMode: Never");
        if (args.Length > 0)
        {
            sb.AppendLine("      args:");
            foreach (var a in args) sb.AppendLine($"      - {a}");
        }
        return sb.ToString();
    }

    private static string Base64(string pem) => Convert.ToBase64String(Encoding.ASCII.GetBytes(pem));

    /// <summary>Stops serving: open watches end, the port closes, clients see an unreachable cluster.</summary>
    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await _stopping.CancelAsync();
        Store.CloseWatches();
        await _controllers.DisposeAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        _pki?.Dispose();
        _stopping.Dispose();
    }
}
