namespace KubeSim;

/// <summary>How a <see cref="KubeSimServer"/> runs.</summary>
public sealed record KubeSimOptions
{
    /// <summary>Port on 127.0.0.1; 0 picks a free one (see <see cref="KubeSimServer.BaseAddress"/>).</summary>
    public int Port { get; init; }

    /// <summary>How long a new pod stays Pending (ContainerCreating) before it is Running and Ready.</summary>
    public TimeSpan ReadyAfter { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Serve HTTPS with a generated test CA (see <see cref="KubeSimServer.CaCertificatePem"/>).</summary>
    public bool Tls { get; init; }

    /// <summary>Accept client certificates issued by the test CA (implies <see cref="Tls"/>); kubeconfigs then carry one.</summary>
    public bool ClientCertificates { get; init; }

    /// <summary>The bearer token requests must carry; null disables token authentication.</summary>
    public string? Token { get; init; } = "kubesim-token";

    /// <summary>YAML (or JSON) manifests created at start.</summary>
    public string? ManifestsYaml { get; init; }

    /// <summary>How long a deleted pod stays Terminating before it is gone (the real kubelet takes up to the grace period).</summary>
    public TimeSpan DeletionGrace { get; init; } = TimeSpan.FromMilliseconds(100);
}
