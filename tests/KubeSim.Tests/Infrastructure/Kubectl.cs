using System.Diagnostics;

namespace KubeSim.Tests.Infrastructure;

public sealed record KubectlResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs the real /usr/bin/kubectl against a kubeconfig, without a shell, with a timeout.</summary>
public sealed class Kubectl : IDisposable
{
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("kubesim-kubectl-").FullName;

    public Kubectl(string kubeconfigYaml)
    {
        KubeconfigPath = Path.Combine(_dir, "kubeconfig");
        File.WriteAllText(KubeconfigPath, kubeconfigYaml);
    }

    public string KubeconfigPath { get; }

    public string WorkDir => _dir;

    public async Task<KubectlResult> RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("kubectl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--kubeconfig");
        psi.ArgumentList.Add(KubeconfigPath);
        psi.ArgumentList.Add("--cache-dir");
        psi.ArgumentList.Add(Path.Combine(_dir, "cache"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = _dir;
        psi.Environment.Remove("KUBECONFIG");

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("kubectl did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not finish within 60s; stderr: {await stderr}");
        }
        return new KubectlResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs kubectl and asserts it exited 0, showing its output when it did not.</summary>
    public async Task<string> SucceedAsync(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.True(result.ExitCode == 0, $"kubectl {string.Join(' ', args)} failed:\n{result}");
        return result.Stdout;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp dir left behind is harmless.
        }
    }
}

/// <summary>A KubeSim and a kubectl pointed at it, disposed together.</summary>
public sealed class SimSession(KubeSimServer server, Kubectl kubectl) : IAsyncDisposable
{
    public KubeSimServer Server { get; } = server;
    public Kubectl Kubectl { get; } = kubectl;

    public static async Task<SimSession> StartAsync(KubeSimOptions options)
    {
        var server = await Sim.StartAsync(options);
        return new SimSession(server, new Kubectl(server.KubeconfigYaml()));
    }

    public async ValueTask DisposeAsync()
    {
        Kubectl.Dispose();
        await Server.DisposeAsync();
    }
}
