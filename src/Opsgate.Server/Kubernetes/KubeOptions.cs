namespace Opsgate.Server.Kubernetes;

internal sealed class KubeOptions
{
    public const string Section = "Kubernetes";

    /// <summary>Longest wait for one Kubernetes call (retries included) before the operation answers 504.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the cluster monitor probes every cluster.</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Upper bound for <c>replicas</c> in scale operations.</summary>
    public int MaxReplicas { get; set; } = 100;

    /// <summary>Let kubeconfigs uploaded through the API use exec plugins and local file paths (off: only clusters declared in configuration may).</summary>
    public bool TrustUploadedKubeconfigs { get; set; }
}
