using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Opsgate.Server.Observability;

/// <summary>
/// Opsgate's instruments. Names are already Prometheus names (snake_case, unit and <c>_total</c> suffixes)
/// so the exporter prints them as they are (see <see cref="TelemetryExtensions"/>).
/// </summary>
internal sealed class OpsgateMetrics
{
    public const string MeterName = "Opsgate";

    private readonly Counter<long> _httpRequests;
    private readonly Histogram<double> _httpDuration;
    private readonly Counter<long> _auditEntries;
    private readonly Counter<long> _operations;
    private readonly Histogram<double> _clusterCallDuration;
    private readonly Histogram<double> _auditWait;
    private readonly Counter<long> _jobs;
    private readonly Histogram<double> _jobDuration;
    private readonly Histogram<double> _jobStartLatency;
    private readonly Counter<long> _notifications;
    private readonly Counter<long> _eventsPruned;

    public OpsgateMetrics(IMeterFactory meters)
    {
        Meter = meters.Create(MeterName);
        _httpRequests = Meter.CreateCounter<long>("http_requests_total", description: "HTTP requests by route template, method and status code.");
        _httpDuration = Meter.CreateHistogram<double>("http_request_duration_seconds", unit: "s", description: "HTTP request duration by route template and method.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _auditEntries = Meter.CreateCounter<long>("opsgate_audit_entries_written_total", description: "Audit log entries committed.");
        _operations = Meter.CreateCounter<long>("opsgate_operations_total", description: "Kubernetes operations by cluster, action and outcome.");
        // Beside http_request_duration_seconds, these two tell a slow cluster or a slow audit log from Opsgate's own time.
        double[] shortWaits = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
        _clusterCallDuration = Meter.CreateHistogram<double>("opsgate_cluster_call_duration_seconds", unit: "s",
            description: "Time a Kubernetes operation spent in its calls to the cluster, by cluster and action (failed and timed-out calls too).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = shortWaits });
        _auditWait = Meter.CreateHistogram<double>("opsgate_audit_wait_seconds", unit: "s",
            description: "Time a request waited for its audit entry's commit before it could answer (failed commits too).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = shortWaits });
        _jobs = Meter.CreateCounter<long>("opsgate_jobs_total", description: "Finished jobs by type and final status.");
        _jobDuration = Meter.CreateHistogram<double>("opsgate_job_duration_seconds", unit: "s", description: "Job run time from first start to finish, by type.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600] });
        _jobStartLatency = Meter.CreateHistogram<double>("opsgate_job_start_latency_seconds", unit: "s", description: "Time from submit (or approval) to first start.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30] });
        _notifications = Meter.CreateCounter<long>("opsgate_notifications_total", description: "Job notifications by webhook and outcome (sent, failed, dropped).");
        _eventsPruned = Meter.CreateCounter<long>("opsgate_events_pruned_total", description: "Job events deleted by the event retention (Jobs:EventRetention).");

        var process = Process.GetCurrentProcess();
        var started = new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0;
        Meter.CreateObservableCounter("process_cpu_seconds_total", () => Environment.CpuUsage.TotalTime.TotalSeconds, unit: "s", description: "CPU time used by the process.");
        Meter.CreateObservableGauge("process_resident_memory_bytes", () => Environment.WorkingSet, unit: "By", description: "Resident memory of the process.");
        Meter.CreateObservableGauge("process_start_time_seconds", () => started, unit: "s", description: "Start time of the process since the Unix epoch.");
        Meter.CreateObservableGauge("process_threads", () => ThreadPool.ThreadCount, description: "Thread-pool threads.");
        Meter.CreateObservableGauge("dotnet_gc_heap_bytes", () => GC.GetTotalMemory(false), unit: "By", description: "Bytes allocated on the managed heap.");
        Meter.CreateObservableCounter("dotnet_gc_collections_total", () => new[]
        {
            new Measurement<long>(GC.CollectionCount(0), new KeyValuePair<string, object?>("generation", "0")),
            new Measurement<long>(GC.CollectionCount(1), new KeyValuePair<string, object?>("generation", "1")),
            new Measurement<long>(GC.CollectionCount(2), new KeyValuePair<string, object?>("generation", "2")),
        }, description: "Garbage collections by generation.");
    }

    public Meter Meter { get; }

    public void AuditEntriesWritten(int count) => _auditEntries.Add(count);

    public void JobStarted(string type, double latencySeconds) =>
        _jobStartLatency.Record(latencySeconds, new KeyValuePair<string, object?>("type", type));

    public void JobFinished(string type, string status, double seconds)
    {
        _jobs.Add(1, new("type", type), new("status", status));
        _jobDuration.Record(seconds, new KeyValuePair<string, object?>("type", type));
    }

    public void EventsPruned(long count) => _eventsPruned.Add(count);

    public void Notification(string webhook, string status) =>
        _notifications.Add(1, new("webhook", webhook), new("status", status));

    /// <summary>A job that ended without running (cancelled, rejected or expired before it started): counted, no duration.</summary>
    public void JobEnded(string type, string status) => _jobs.Add(1, new("type", type), new("status", status));

    public void Operation(string cluster, string action, string status) =>
        _operations.Add(1, new("cluster", cluster), new("action", action), new("status", status));

    public void ClusterCall(string cluster, string action, TimeSpan elapsed) =>
        _clusterCallDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("cluster", cluster), new KeyValuePair<string, object?>("action", action));

    public void AuditWait(TimeSpan elapsed) => _auditWait.Record(elapsed.TotalSeconds);

    public void HttpRequest(string endpoint, string method, int status, double seconds)
    {
        method = MethodLabel(method);
        var statusText = StatusText(status);
        _httpRequests.Add(1, new("endpoint", endpoint), new("method", method), new("status", statusText));
        _httpDuration.Record(seconds, new KeyValuePair<string, object?>("endpoint", endpoint), new KeyValuePair<string, object?>("method", method));
    }

    /// <summary>A client may send any token as its method: each new one would be a new series, so the unknown ones share one.</summary>
    private static string MethodLabel(string method) => method switch
    {
        "GET" or "HEAD" or "POST" or "PUT" or "PATCH" or "DELETE" or "OPTIONS" => method,
        _ => "OTHER",
    };

    private static string StatusText(int status) => status switch
    {
        200 => "200", 201 => "201", 204 => "204", 400 => "400", 401 => "401", 403 => "403", 404 => "404", 409 => "409", 429 => "429", 500 => "500",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

internal static class MetricsExtensions
{
    /// <summary>The Swagger UI's files are served by a middleware, not an endpoint: one label for all of them.</summary>
    private const string DocsPath = "/api/v1/docs";

    /// <summary>
    /// Counts every request under its route template (never the raw path, which would explode label values)
    /// and logs refused and failed requests; successful ones are logged at Debug to keep the hot path quiet.
    /// Registered before the exception handler, so the status counted is the one the client got.
    /// </summary>
    public static void UseOpsgateMetrics(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<OpsgateMetrics>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Opsgate.Requests");
        app.Use(async (context, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await next(context);
            }
            finally
            {
                // A group's root route ("/api/v1/apikeys" + "/") has a trailing slash in its template; the label is the path users call.
                // The exception handler clears the endpoint of a request that threw (a body refused while read); its feature keeps it.
                var matched = context.GetEndpoint() ?? context.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Endpoint;
                var endpoint = (matched as RouteEndpoint)?.RoutePattern.RawText is { } route
                    ? "/" + route.Trim('/')
                    : context.Request.Path.StartsWithSegments(DocsPath) ? DocsPath : "unmatched";
                var elapsed = Stopwatch.GetElapsedTime(started);
                var status = context.Response.StatusCode;
                metrics.HttpRequest(endpoint, context.Request.Method, status, elapsed.TotalSeconds);
                if (status >= 400)
                    RequestLog.Refused(logger, context.Request.Method, endpoint, status, elapsed.TotalMilliseconds);
                else
                    RequestLog.Served(logger, context.Request.Method, endpoint, status, elapsed.TotalMilliseconds);
            }
        });
    }
}

internal static partial class RequestLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Debug, Message = "{Method} {Endpoint} answered {Status} in {ElapsedMs:0.0} ms")]
    public static partial void Served(ILogger logger, string method, string endpoint, int status, double elapsedMs);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "{Method} {Endpoint} answered {Status} in {ElapsedMs:0.0} ms")]
    public static partial void Refused(ILogger logger, string method, string endpoint, int status, double elapsedMs);
}
