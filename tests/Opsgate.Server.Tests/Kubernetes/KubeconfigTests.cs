using System.Text;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Tests.Kubernetes;

public sealed class KubeconfigTests
{
    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    private static readonly string Sample = $$"""
        apiVersion: v1
        kind: Config
        current-context: prod
        clusters:
        - name: prod-cluster
          cluster:
            server: https://10.0.0.1:6443
            certificate-authority-data: {{B64("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}}
        - name: lab
          cluster:
            server: https://lab.example:6443
            insecure-skip-tls-verify: true
        users:
        - name: ops
          user:
            token: abc.def
        - name: plugin
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1
              command: /usr/local/bin/get-token
              args: ["--cluster", "lab"]
              env:
              - name: REGION
                value: eu
        contexts:
        - name: prod
          context: {cluster: prod-cluster, user: ops, namespace: apps}
        - name: lab
          context: {cluster: lab, user: plugin}
        """;

    [Fact]
    public void Current_context_resolves_server_ca_token_and_namespace()
    {
        var target = Kubeconfig.Parse(Sample).Resolve(null, trusted: false);
        Assert.Equal(new Uri("https://10.0.0.1:6443"), target.Server);
        Assert.Contains("BEGIN CERTIFICATE", target.CaPem, StringComparison.Ordinal);
        Assert.Equal("abc.def", target.Token);
        Assert.Equal("apps", target.Namespace);
        Assert.False(target.InsecureSkipTlsVerify);
    }

    [Fact]
    public void Named_context_with_exec_plugin_needs_a_trusted_kubeconfig()
    {
        var config = Kubeconfig.Parse(Sample);
        var e = Assert.Throws<KubeconfigException>(() => config.Resolve("lab", trusted: false));
        Assert.Contains("exec credential plugin", e.Message, StringComparison.Ordinal);

        var target = config.Resolve("lab", trusted: true);
        Assert.True(target.InsecureSkipTlsVerify);
        Assert.Equal("/usr/local/bin/get-token", target.Exec!.Command);
        Assert.Equal(["--cluster", "lab"], target.Exec.Args);
        Assert.Equal("eu", target.Exec.Env.Single(v => v.Name == "REGION").Value);
    }

    [Fact]
    public void File_references_are_refused_in_uploaded_kubeconfigs_and_read_from_trusted_ones()
    {
        using var dir = new Infrastructure.TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "token"), "from-file\n");
        const string yaml = """
            clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
            users: [{name: u, user: {tokenFile: token}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            """;
        var e = Assert.Throws<KubeconfigException>(() => Kubeconfig.Parse(yaml).Resolve(null, trusted: false));
        Assert.Equal("tokenFile refers to a local file ('token'); an uploaded kubeconfig must embed it (token)", e.Message);
        Assert.Equal("from-file", Kubeconfig.Parse(yaml).Resolve(null, trusted: true, dir.Path).Token);
    }

    [Theory]
    [InlineData("clusters: [", "not valid YAML")]
    [InlineData("contexts: []", "no current-context")]
    [InlineData("current-context: nope\ncontexts: [{name: a, context: {cluster: c}}]", "no context 'nope'")]
    [InlineData("current-context: a\ncontexts: [{name: a, context: {cluster: c}}]", "does not define")]
    [InlineData("current-context: a\nclusters: [{name: c, cluster: {server: 'ftp://x'}}]\ncontexts: [{name: a, context: {cluster: c}}]", "no valid server URL")]
    [InlineData("current-context: a\nclusters: [{name: c, cluster: {server: 'https://x', certificate-authority-data: '%%%'}}]\ncontexts: [{name: a, context: {cluster: c}}]", "not valid base64")]
    public void Broken_kubeconfigs_are_explained(string yaml, string expected)
    {
        var e = Assert.Throws<KubeconfigException>(() => Kubeconfig.Parse(yaml).Resolve(null, trusted: false));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
