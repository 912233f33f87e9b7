using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace Opsgate.Server.Kubernetes;

/// <summary>A kubeconfig that cannot be used, with words a user can act on.</summary>
internal sealed class KubeconfigException(string message) : Exception(message);

/// <summary>The parts of a kubeconfig file Opsgate uses (clusters, users, contexts), as kubectl reads them.</summary>
internal sealed class Kubeconfig
{
    [YamlMember(Alias = "clusters")] public List<NamedCluster> Clusters { get; set; } = [];
    [YamlMember(Alias = "users")] public List<NamedUser> Users { get; set; } = [];
    [YamlMember(Alias = "contexts")] public List<NamedContext> Contexts { get; set; } = [];
    [YamlMember(Alias = "current-context")] public string? CurrentContext { get; set; }

    private static readonly IDeserializer Yaml = new DeserializerBuilder().IgnoreUnmatchedProperties().Build();

    public static Kubeconfig Parse(string yaml)
    {
        if (yaml.Length > 1024 * 1024)
            throw new KubeconfigException("the kubeconfig is larger than 1 MiB");
        try
        {
            return Yaml.Deserialize<Kubeconfig?>(yaml) ?? throw new KubeconfigException("the kubeconfig is empty");
        }
        catch (YamlException e)
        {
            throw new KubeconfigException($"the kubeconfig is not valid YAML (line {e.Start.Line}, column {e.Start.Column}): {e.InnerException?.Message ?? e.Message}");
        }
    }

    /// <summary>
    /// Picks a context (the named one, else current-context, else the only one) and returns everything needed
    /// to connect. <paramref name="trusted"/> allows what only an operator's own files may do: exec plugins and
    /// paths to local files. A kubeconfig uploaded through the API is untrusted: it must not make the server
    /// run programs or read its files.
    /// </summary>
    public KubeTarget Resolve(string? contextName, bool trusted, string? baseDirectory = null)
    {
        var name = contextName ?? CurrentContext ?? (Contexts.Count == 1 ? Contexts[0].Name : null)
            ?? throw new KubeconfigException("the kubeconfig has no current-context; name the context to use");
        var context = Contexts.FirstOrDefault(c => c.Name == name)?.Context
            ?? throw new KubeconfigException($"the kubeconfig has no context '{name}' (it has: {string.Join(", ", Contexts.Select(c => c.Name))})");
        var cluster = Clusters.FirstOrDefault(c => c.Name == context.Cluster)?.Cluster
            ?? throw new KubeconfigException($"context '{name}' names cluster '{context.Cluster}', which the kubeconfig does not define");
        var user = context.User is null ? new UserEntry() : Users.FirstOrDefault(u => u.Name == context.User)?.User
            ?? throw new KubeconfigException($"context '{name}' names user '{context.User}', which the kubeconfig does not define");

        if (!Uri.TryCreate(cluster.Server, UriKind.Absolute, out var server) || server.Scheme is not ("https" or "http"))
            throw new KubeconfigException($"cluster '{context.Cluster}' has no valid server URL (got '{cluster.Server}')");

        string? FullPath(string? path, string what)
        {
            if (path is null)
                return null;
            if (!trusted)
                throw new KubeconfigException($"{what} refers to a local file ('{path}'); an uploaded kubeconfig must embed it ({(what == "tokenFile" ? "token" : what + "-data")})");
            return baseDirectory is null ? path : Path.Combine(baseDirectory, path);
        }

        string? File(string? path, string what) =>
            FullPath(path, what) is not { } full ? null
            : System.IO.File.Exists(full) ? System.IO.File.ReadAllText(full)
            : throw new KubeconfigException($"{what} file '{full}' does not exist");

        if (user.Exec is not null && !trusted)
            throw new KubeconfigException("the kubeconfig uses an exec credential plugin; uploaded kubeconfigs may not run programs on the Opsgate server (declare the cluster in configuration instead)");
        if (user.Exec is { } exec && exec.ApiVersion is not ("client.authentication.k8s.io/v1" or "client.authentication.k8s.io/v1beta1"))
            throw new KubeconfigException($"exec plugin apiVersion '{exec.ApiVersion}' is not supported (use client.authentication.k8s.io/v1)");

        return new KubeTarget(
            Server: server,
            CaPem: Decode(cluster.CertificateAuthorityData, "certificate-authority-data") ?? File(cluster.CertificateAuthority, "certificate-authority"),
            InsecureSkipTlsVerify: cluster.InsecureSkipTlsVerify,
            TlsServerName: cluster.TlsServerName,
            Token: user.Token ?? File(user.TokenFile, "tokenFile")?.Trim(),
            TokenFile: user.Token is null ? FullPath(user.TokenFile, "tokenFile") : null,
            ClientCertificatePem: Decode(user.ClientCertificateData, "client-certificate-data") ?? File(user.ClientCertificate, "client-certificate"),
            ClientKeyPem: Decode(user.ClientKeyData, "client-key-data") ?? File(user.ClientKey, "client-key"),
            Exec: user.Exec,
            Namespace: context.Namespace);
    }

    private static string? Decode(string? base64, string field)
    {
        if (base64 is null)
            return null;
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            throw new KubeconfigException($"{field} is not valid base64");
        }
    }
}

/// <summary>
/// Everything needed to reach one cluster as one user. <see cref="Token"/> holds the token file's content when the
/// kubeconfig names one; <see cref="TokenFile"/> is kept so the client can re-read a token that gets rotated.
/// </summary>
internal sealed record KubeTarget(
    Uri Server, string? CaPem, bool InsecureSkipTlsVerify, string? TlsServerName, string? Token, string? TokenFile,
    string? ClientCertificatePem, string? ClientKeyPem, ExecConfig? Exec, string? Namespace);

internal sealed class NamedCluster
{
    [YamlMember(Alias = "name")] public string Name { get; set; } = "";
    [YamlMember(Alias = "cluster")] public ClusterEntry Cluster { get; set; } = new();
}

internal sealed class ClusterEntry
{
    [YamlMember(Alias = "server")] public string? Server { get; set; }
    [YamlMember(Alias = "certificate-authority")] public string? CertificateAuthority { get; set; }
    [YamlMember(Alias = "certificate-authority-data")] public string? CertificateAuthorityData { get; set; }
    [YamlMember(Alias = "insecure-skip-tls-verify")] public bool InsecureSkipTlsVerify { get; set; }
    [YamlMember(Alias = "tls-server-name")] public string? TlsServerName { get; set; }
}

internal sealed class NamedUser
{
    [YamlMember(Alias = "name")] public string Name { get; set; } = "";
    [YamlMember(Alias = "user")] public UserEntry User { get; set; } = new();
}

internal sealed class UserEntry
{
    [YamlMember(Alias = "token")] public string? Token { get; set; }
    [YamlMember(Alias = "tokenFile")] public string? TokenFile { get; set; }
    [YamlMember(Alias = "client-certificate")] public string? ClientCertificate { get; set; }
    [YamlMember(Alias = "client-certificate-data")] public string? ClientCertificateData { get; set; }
    [YamlMember(Alias = "client-key")] public string? ClientKey { get; set; }
    [YamlMember(Alias = "client-key-data")] public string? ClientKeyData { get; set; }
    [YamlMember(Alias = "exec")] public ExecConfig? Exec { get; set; }
}

internal sealed class ExecConfig
{
    [YamlMember(Alias = "apiVersion")] public string? ApiVersion { get; set; }
    [YamlMember(Alias = "command")] public string Command { get; set; } = "";
    [YamlMember(Alias = "args")] public List<string> Args { get; set; } = [];
    [YamlMember(Alias = "env")] public List<ExecEnv> Env { get; set; } = [];
}

internal sealed class ExecEnv
{
    [YamlMember(Alias = "name")] public string Name { get; set; } = "";
    [YamlMember(Alias = "value")] public string Value { get; set; } = "";
}

internal sealed class NamedContext
{
    [YamlMember(Alias = "name")] public string Name { get; set; } = "";
    [YamlMember(Alias = "context")] public ContextEntry Context { get; set; } = new();
}

internal sealed class ContextEntry
{
    [YamlMember(Alias = "cluster")] public string Cluster { get; set; } = "";
    [YamlMember(Alias = "user")] public string? User { get; set; }
    [YamlMember(Alias = "namespace")] public string? Namespace { get; set; }
}
