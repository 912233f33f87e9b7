using KubeSim.Tests.Infrastructure;

namespace KubeSim.Tests;

/// <summary>kubectl's ways in: token over HTTPS, client certificate, exec plugin, and the ways it is kept out.</summary>
public sealed class KubectlAuthTests
{
    [Fact]
    public async Task Client_certificate_over_https_is_accepted()
    {
        await using var sim = await Sim.StartAsync(new KubeSimOptions { Tls = true, ClientCertificates = true, Token = null });
        var config = sim.KubeconfigYaml();
        Assert.Contains("client-certificate-data:", config);
        Assert.Contains("certificate-authority-data:", config);
        using var kubectl = new Kubectl(config);

        var output = await kubectl.SucceedAsync("get", "deployments", "-n", "prod", "-o", "name");

        Assert.Equal("deployment.apps/web", output.Trim());
    }

    [Fact]
    public async Task Exec_plugin_credentials_are_accepted()
    {
        await using var sim = await Sim.StartAsync(new KubeSimOptions { Tls = true, Token = "from-the-plugin" });
        using var scratch = new Kubectl("");
        var script = Path.Combine(scratch.WorkDir, "credential.sh");
        await File.WriteAllTextAsync(script, """
            #!/bin/sh
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-the-plugin"}}'

            """);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var kubectl = new Kubectl(sim.ExecKubeconfigYaml(script));

        var output = await kubectl.SucceedAsync("get", "statefulsets", "-n", "prod", "-o", "name");

        Assert.Equal("statefulset.apps/postgres", output.Trim());
    }

    [Fact]
    public async Task Wrong_token_is_refused()
    {
        await using var sim = await Sim.StartAsync(new KubeSimOptions { Tls = true });
        using var kubectl = new Kubectl(sim.KubeconfigYaml().Replace("token: kubesim-token", "token: wrong", StringComparison.Ordinal));

        var result = await kubectl.RunAsync("get", "pods", "-n", "prod");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("You must be logged in to the server", result.Stderr);
    }

    [Fact]
    public async Task Plain_http_without_a_token_is_open()
    {
        // kubectl never sends credentials over plain HTTP, so an HTTP KubeSim for kubectl runs without a token.
        await using var sim = await Sim.StartAsync(new KubeSimOptions { Token = null });
        using var kubectl = new Kubectl(sim.KubeconfigYaml());

        var output = await kubectl.SucceedAsync("get", "namespaces", "-o", "name");

        Assert.Contains("namespace/prod", output);
        Assert.Contains("namespace/default", output);
    }

    [Fact]
    public async Task A_stopped_cluster_is_unreachable()
    {
        var sim = await Sim.StartAsync(new KubeSimOptions { Tls = true });
        using var kubectl = new Kubectl(sim.KubeconfigYaml());
        await sim.DisposeAsync();

        var result = await kubectl.RunAsync("get", "pods", "-n", "prod", "--request-timeout=5s");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("connection refused", result.Stderr);
    }
}
