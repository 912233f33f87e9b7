using System.Reflection;
using Microsoft.Extensions.Diagnostics.Metrics;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Opsgate.Server.Access;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Observability;

/// <summary>Settings of the <c>OpenTelemetry</c> section (traces) and the <c>Metrics</c> section (the scrape endpoint).</summary>
internal sealed record TelemetrySettings(Uri? TraceEndpoint, OtlpExportProtocol Protocol, bool MetricsRequireKey)
{
    public const string StandardEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string StandardProtocol = "OTEL_EXPORTER_OTLP_PROTOCOL";

    /// <summary>
    /// Reads and checks the settings; a bad one stops start-up naming its key. <c>OpenTelemetry:Endpoint</c> wins over the
    /// standard variable. Both are the collector's base address (as the OTLP specification defines the variable): over
    /// http/protobuf the exporter posts to <c>/v1/traces</c> under it.
    /// </summary>
    public static TelemetrySettings From(IConfiguration configuration)
    {
        var (endpointKey, endpoint) = configuration["OpenTelemetry:Endpoint"] is { Length: > 0 } own
            ? ("OpenTelemetry:Endpoint", own)
            : (StandardEndpoint, configuration[StandardEndpoint]);
        var (protocolKey, protocolText) = configuration["OpenTelemetry:Protocol"] is { Length: > 0 } ownProtocol
            ? ("OpenTelemetry:Protocol", ownProtocol)
            : (StandardProtocol, configuration[StandardProtocol]);
        // The OTLP specification's default; the .NET exporter's own default (gRPC on 4317) would surprise a user
        // who followed any collector's guide for OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318.
        var protocol = protocolText switch
        {
            null or "" or "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            "grpc" => OtlpExportProtocol.Grpc,
            _ => throw new StartupException($"configuration error: {protocolKey} must be 'http/protobuf' or 'grpc', not '{protocolText}'"),
        };
        Uri? traces = null;
        if (!string.IsNullOrWhiteSpace(endpoint))
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                throw new StartupException($"configuration error: {endpointKey} must be an absolute http(s) URL of an OTLP collector, not '{endpoint}'");
            traces = protocol == OtlpExportProtocol.HttpProtobuf ? new Uri(uri.AbsoluteUri.TrimEnd('/') + "/v1/traces") : uri;
        }
        var requireKey = configuration["Metrics:RequireKey"] switch
        {
            null or "" => false,
            var text when bool.TryParse(text, out var value) => value,
            var text => throw new StartupException($"configuration error: Metrics:RequireKey must be true or false, not '{text}'"),
        };
        return new TelemetrySettings(traces, protocol, requireKey);
    }
}

/// <summary>
/// OpenTelemetry, wired once (as eShop's service defaults do): the Opsgate meter is scraped at <c>/metrics</c> through the
/// OpenTelemetry Prometheus exporter, and when a collector is configured, traces of requests, outgoing HTTP calls
/// (clusters, webhooks, <c>http.call</c>), git and the job engine go to it over OTLP. Without one nothing is exported
/// and no span is recorded: only the request's own activity exists, which puts a trace id on its log lines.
/// </summary>
internal static class TelemetryExtensions
{
    /// <summary>Every ActivitySource of Opsgate is named <c>Opsgate.*</c> (Engine, Git): the wildcard spares this file a reference to each feature.</summary>
    private const string OpsgateSources = "Opsgate.*";

    public static void AddOpsgateTelemetry(this WebApplicationBuilder builder)
    {
        AddStandardVariables(builder.Configuration);
        var settings = TelemetrySettings.From(builder.Configuration);
        builder.Services.AddSingleton(settings);
        // Only the meter this host's IMeterFactory made (MeterScope.Local): an SDK AddMeter("Opsgate") would match meters by name
        // across the process, so two hosts in one process (the test suite runs many) would count each other's requests.
        builder.Services.AddMetrics(m => m.EnableMetrics(OpsgateMetrics.MeterName, scopes: MeterScope.Local));
        builder.Services.AddSingleton<OpsgateMetrics>();

        var version = typeof(TelemetryExtensions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        // OTEL_SERVICE_NAME, when set, names the service: a resource added here would win over it.
        var named = !string.IsNullOrEmpty(builder.Configuration["OTEL_SERVICE_NAME"]);
        var otel = builder.Services.AddOpenTelemetry().ConfigureResource(r =>
        {
            if (!named)
                r.AddService("opsgate", serviceVersion: version);
        });
        otel.WithMetrics(metrics => metrics.AddPrometheusExporter(o =>
        {
            // Measured against the names README documents (MetricsTests, and a real Prometheus 2.42 scraping it): the
            // default translation kept every name, since each already ends in its unit and _total (none got one twice).
            // Left on, these would have added what no dashboard expects: otel_scope_name/otel_scope_version labels on
            // every series, a target_info series, and answers up to 300 ms old. What does change: a series without
            // labels is written "name{} value" (the same series to Prometheus and promtool).
            o.ScopeInfoEnabled = false;
            o.TargetInfoEnabled = false;
            o.ScrapeResponseCacheDurationMilliseconds = 0;
        }));
        if (settings.TraceEndpoint is not { } endpoint)
            return;
        otel.WithTracing(tracing => tracing
            .AddSource(OpsgateSources)
            .AddAspNetCoreInstrumentation(o =>
            {
                o.RecordException = true;
                // Scrapes and probes every few seconds would bury the requests someone looks for.
                o.Filter = context => !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/health");
                o.EnrichWithHttpResponse = (span, response) => RouteAsUsersCallIt(span, response.HttpContext.Request.Method);
            })
            .AddHttpClientInstrumentation(o => o.RecordException = true)
            .AddOtlpExporter(o =>
            {
                o.Endpoint = endpoint;
                o.Protocol = settings.Protocol;
            }));
    }

    /// <summary>
    /// A group's root route ("/api/v1/jobs" + "/") has a trailing slash in its template; the span says the path users
    /// call, as the <c>endpoint</c> label of http_requests_total does.
    /// </summary>
    private static void RouteAsUsersCallIt(System.Diagnostics.Activity span, string method)
    {
        if (span.GetTagItem("http.route") is string { Length: > 1 } route && route.EndsWith('/'))
        {
            route = route.TrimEnd('/');
            span.SetTag("http.route", route);
            span.DisplayName = $"{method} {route}";
        }
    }

    /// <summary>
    /// Opsgate's configuration reads only OPSGATE_ variables (see OpsgateHost); the standard OTEL_ ones (endpoint, headers,
    /// service name, batch delay) are what a collector's guide tells an operator to set, so they reach the SDK as they are.
    /// </summary>
    private static void AddStandardVariables(ConfigurationManager configuration)
    {
        var standard = Environment.GetEnvironmentVariables().Keys.OfType<string>()
            .Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal) && configuration[k] is null)
            .ToDictionary(k => k, k => Environment.GetEnvironmentVariable(k));
        if (standard.Count > 0)
            configuration.AddInMemoryCollection(standard);
    }

    /// <summary><c>/metrics</c>, anonymous unless <c>Metrics:RequireKey</c> asks for a viewer key (any role: viewer is the least).</summary>
    public static void MapMetricsEndpoint(this WebApplication app)
    {
        // The text format (0.0.4) whatever the scraper asks for: Prometheus asks for OpenMetrics first, and in OpenMetrics
        // the exporter adds a <name>_created series beside every counter and histogram (measured with Prometheus 2.42:
        // http_requests_created, http_request_duration_seconds_created...), series nobody asked for.
        var endpoint = app.MapPrometheusScrapingEndpoint("/metrics", meterProvider: null, configureBranchedPipeline: branch => branch.Use((context, next) =>
        {
            context.Request.Headers.Accept = "text/plain; version=0.0.4";
            return next(context);
        }), optionsName: null);
        if (app.Services.GetRequiredService<TelemetrySettings>().MetricsRequireKey)
            endpoint.RequireAuthorization(Roles.Policy(Role.Viewer)).WithMetadata(new AccessRule(Role.Viewer, AccessScope.Global));
        else
            endpoint.AllowAnonymous().WithMetadata(new AccessRule(null, AccessScope.Public));
    }
}
