using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Opsgate.Bench;

/// <summary>
/// KubeSim (the project's in-memory kube-apiserver) as a child process on a loopback port, plain HTTP with no
/// token, seeded with <see cref="Manifests"/>. Disposing kills it and removes its temp dir.
/// </summary>
internal sealed partial class KubeSimProcess : ChildServer
{
    public const string Namespace = "prod";
    public const string Deployment = "web";

    /// <summary>A namespace and a deployment of 2 replicas, as in Opsgate's own cluster tests.</summary>
    private const string Manifests =
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: prod}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: prod, labels: {app: web}}
        spec:
          replicas: 2
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: web, image: nginx:1.27}]}
        """;

    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    private KubeSimProcess(Process process, string dir, Uri baseAddress)
        : base(process, dir, baseAddress)
    {
    }

    /// <summary>The kubeconfig KubeSim wrote, as Opsgate's cluster registration takes it.</summary>
    public string Kubeconfig { get; private set; } = "";

    public static async Task<KubeSimProcess> StartAsync(string dll, HttpClient http, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("opsgate-bench-kubesim-").FullName;
        var manifests = Path.Combine(dir, "manifests.yaml");
        var kubeconfig = Path.Combine(dir, "kubeconfig");
        await File.WriteAllTextAsync(manifests, Manifests, ct);
        var port = ChildProcess.FreeLoopbackPort();
        var start = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dir,
        };
        foreach (var arg in new[] { dll, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--kubeconfig-out", kubeconfig, "--load", manifests })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start) ?? throw new BenchException("could not start dotnet KubeSim.dll");
        process.OutputDataReceived += (_, _) => { }; // its "listening on" lines
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                Console.Error.WriteLine($"[kubesim] {e.Data}");
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var sim = new KubeSimProcess(process, dir, new Uri($"http://127.0.0.1:{port}/"));
        try
        {
            await sim.WaitReadyAsync(http, kubeconfig, ct);
            return sim;
        }
        catch
        {
            await sim.DisposeAsync();
            throw;
        }
    }

    private async Task WaitReadyAsync(HttpClient http, string kubeconfig, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(ReadyTimeout.TotalSeconds * Stopwatch.Frequency);
        var healthz = new Uri(BaseAddress, "healthz");
        while (true)
        {
            if (Process.HasExited)
                throw new BenchException($"KubeSim exited with code {Process.ExitCode} before it was ready");
            try
            {
                using var response = await http.GetAsync(healthz, ct);
                if (response.StatusCode == HttpStatusCode.OK && File.Exists(kubeconfig))
                {
                    Kubeconfig = await File.ReadAllTextAsync(kubeconfig, ct);
                    var server = ServerLine().Match(Kubeconfig);
                    if (!server.Success || new Uri(server.Groups[1].Value).Port != BaseAddress.Port)
                        throw new BenchException($"KubeSim's kubeconfig does not point at {BaseAddress}");
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (IOException)
            {
                // The kubeconfig is being written.
            }
            if (Stopwatch.GetTimestamp() > deadline)
                throw new BenchException($"KubeSim was not ready at {healthz} within {ReadyTimeout.TotalSeconds} s");
            await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
        }
    }

    [GeneratedRegex(@"server:\s*(\S+)")]
    private static partial Regex ServerLine();
}
