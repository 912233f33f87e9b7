using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Opsgate.Server.Observability;

namespace Opsgate.Server.Kubernetes;

/// <summary>What the last probe of a cluster found.</summary>
internal sealed record ClusterHealth(string Status, string? ServerVersion, DateTime? LastChecked, string? Message)
{
    public static readonly ClusterHealth Unknown = new("unknown", null, null, "not probed yet");
}

/// <summary>
/// Probes every cluster's <c>/version</c> periodically (Kubernetes:ProbeInterval) and on demand, keeps the
/// result for the status endpoints, and exports <c>opsgate_cluster_up{cluster}</c>.
/// </summary>
internal sealed partial class ClusterMonitor : BackgroundService
{
    private readonly ClusterRegistry _registry;
    private readonly IOptions<KubeOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ClusterMonitor> _logger;
    private readonly ConcurrentDictionary<string, ClusterHealth> _health = new(StringComparer.Ordinal);

    public ClusterMonitor(ClusterRegistry registry, IOptions<KubeOptions> options, TimeProvider time, OpsgateMetrics metrics, ILogger<ClusterMonitor> logger)
    {
        _registry = registry;
        _options = options;
        _time = time;
        _logger = logger;
        metrics.Meter.CreateObservableGauge("opsgate_cluster_up", () => _health.Select(h =>
            new Measurement<int>(h.Value.Status == "connected" ? 1 : 0, new KeyValuePair<string, object?>("cluster", h.Key))),
            description: "1 when the cluster's API server answered the last probe, else 0.");
    }

    public ClusterHealth Health(string cluster) => _health.GetValueOrDefault(cluster, ClusterHealth.Unknown);

    public void Forget(string cluster) => _health.TryRemove(cluster, out _);

    public async Task<ClusterHealth> ProbeAsync(ClusterInfo cluster, CancellationToken ct)
    {
        ClusterHealth health;
        try
        {
            var client = await _registry.ClientAsync(cluster, ct);
            var version = await client.VersionAsync(ct);
            health = new ClusterHealth("connected", version["gitVersion"]?.GetValue<string>(), Now(), null);
        }
        catch (KubeApiException e) when (e.StatusCode is 401 or 403)
        {
            health = new ClusterHealth("unauthorized", null, Now(), e.Message);
        }
        catch (KubeApiException e)
        {
            health = new ClusterHealth("error", null, Now(), e.Message);
        }
        catch (KubeUnreachableException e)
        {
            health = new ClusterHealth("unreachable", null, Now(), e.Message);
        }
        catch (KubeconfigException e)
        {
            health = new ClusterHealth("misconfigured", null, Now(), e.Message);
        }
        if (_health.TryGetValue(cluster.Name, out var previous) && previous.Status != health.Status)
            LogStatusChanged(_logger, cluster.Name, previous.Status, health.Status, health.Message);
        _health[cluster.Name] = health;
        return health;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.Value.ProbeInterval, _time);
        do
        {
            try
            {
                var clusters = await _registry.ListAsync(stoppingToken);
                await Task.WhenAll(clusters.Select(c => ProbeAsync(c, stoppingToken)));
                foreach (var gone in _health.Keys.Except(clusters.Select(c => c.Name)))
                    _health.TryRemove(gone, out _);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A database hiccup must not stop the monitor (or the host); the next tick tries again.
                LogProbeFailed(_logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private DateTime Now() => _time.GetUtcNow().UtcDateTime;

    [LoggerMessage(EventId = 501, Level = LogLevel.Error, Message = "Probing clusters failed")]
    private static partial void LogProbeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Cluster {Cluster} went from {Previous} to {Current}: {Message}")]
    private static partial void LogStatusChanged(ILogger logger, string cluster, string previous, string current, string? message);
}
