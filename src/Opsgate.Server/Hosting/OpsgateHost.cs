using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Options;
using Opsgate.Server.Ansible;
using Opsgate.Server.Api;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;
using Opsgate.Server.Credentials;
using Opsgate.Server.Engine;
using Opsgate.Server.Jobs;
using Opsgate.Server.Kubernetes;
using Opsgate.Server.Observability;
using Opsgate.Server.Persistence;
using Opsgate.Server.Projects;
using Opsgate.Server.Secrets;
using Opsgate.Server.Ui;

namespace Opsgate.Server.Hosting;

/// <summary>Builds and runs the Opsgate web application; tests build it the same way with their own arguments.</summary>
public static class OpsgateHost
{
    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <param name="args">Command-line arguments, as for the opsgate binary.</param>
    /// <param name="configureServices">Replaces services after Opsgate registered its own (tests use it for a fake clock).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            // appsettings.json ships next to the binary; relative paths (DataDir) stay relative to where opsgate is run.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.AddOpsgateConfiguration();
        builder.AddOpsgateLogging();
        builder.AddPersistence();
        builder.AddAudit();
        builder.AddOpsgateAuth();
        builder.AddOpsgateTelemetry();
        builder.AddHttpSurface();
        builder.AddSecrets();
        builder.AddKubernetes();
        builder.AddJobEngine();
        builder.AddJobs();
        builder.AddAnsible();
        builder.AddCredentials();
        builder.AddProjects();
        builder.AddUi();
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        // Metrics first: a request the exception handler or the status-code pages answer is counted with the status the client got.
        app.UseOpsgateMetrics();
        app.UseHttpSurface();
        app.UseOpsgateAuth();
        app.MapHttpSurface();
        app.MapMetricsEndpoint();
        app.MapAuth();
        app.MapAudit();
        app.MapKubernetes();
        app.MapJobs();
        app.MapAnsible();
        app.MapCredentials();
        app.MapProjects();
        app.MapUi();
        return app;
    }

    /// <summary>Runs the features' start-up checks (settings), migrates the database, runs their start-up tasks, then starts listening.</summary>
    public static async Task StartOpsgateAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        foreach (var check in app.Services.GetServices<StartupCheck>())
            check.Run(app.Services);
        ValidateUrls(app.Services.GetRequiredService<IConfiguration>()["urls"]);
        await app.Services.GetRequiredService<Migrator>().MigrateAsync(cancellationToken);
        foreach (var task in app.Services.GetServices<StartupTask>())
            await task.Run(app.Services, cancellationToken);
        await app.StartAsync(cancellationToken);
    }

    public static IReadOnlyCollection<string> ListeningAddresses(this WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();

    internal static async Task<int> RunAsync(string[] args)
    {
        WebApplication? app = null;
        try
        {
            app = Build(args);
            await app.StartOpsgateAsync();
            var database = app.Services.GetRequiredService<Database>();
            var listening = $"Opsgate listening on {string.Join(", ", app.ListeningAddresses())} (database: {database.Describe()}); API docs at /api/v1/docs";
            app.Services.GetRequiredService<StartupConsole>().Print(listening, listening,
                ("Addresses", string.Join(", ", app.ListeningAddresses())), ("Database", database.Describe()));
            await app.WaitForShutdownAsync();
            return 0;
        }
        catch (Exception e) when (DescribeStartupProblem(e) is { } problem)
        {
            Console.Error.WriteLine($"opsgate: {problem}");
            return 1;
        }
        finally
        {
            if (app is not null)
                await app.DisposeAsync();
        }
    }

    private static void AddOpsgateConfiguration(this WebApplicationBuilder builder)
    {
        var sources = builder.Configuration.Sources;
        // Only OPSGATE_-prefixed variables configure Opsgate: the framework's unprefixed source would let any
        // DATADIR or DATABASE__PROVIDER in the environment change settings by surprise.
        foreach (var unprefixed in sources.OfType<Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationSource>()
                     .Where(s => string.IsNullOrEmpty(s.Prefix)).ToList())
            sources.Remove(unprefixed);
        var commandLine = sources.Select((s, i) => (s, i)).LastOrDefault(x => x.s is CommandLineConfigurationSource);
        var at = commandLine.s is null ? sources.Count : commandLine.i;
        // Precedence, lowest first: appsettings.json, the YAML file, OPSGATE_ variables, the command line.
        sources.Insert(at, new Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationSource { Prefix = "OPSGATE_" });
        var yaml = builder.Configuration["config"] ?? Environment.GetEnvironmentVariable("OPSGATE_CONFIG");
        if (!string.IsNullOrWhiteSpace(yaml))
            sources.Insert(at, new YamlConfigurationSource(Path.GetFullPath(yaml)));

        if (string.IsNullOrWhiteSpace(builder.Configuration["urls"]))
            builder.WebHost.UseUrls(DefaultUrl);

        builder.Services.Configure<OpsgateOptions>(builder.Configuration);
        builder.Services.AddOptions<DatabaseOptions>().Bind(builder.Configuration.GetSection(DatabaseOptions.Section));
        builder.Services.AddOptions<HttpOptions>().Bind(builder.Configuration.GetSection(HttpOptions.Section));
        builder.Services.AddOptions<RateLimitOptions>().Bind(builder.Configuration.GetSection(RateLimitOptions.Section));
        builder.Services.AddOptions<AuthOptions>().Bind(builder.Configuration.GetSection(AuthOptions.Section));
        builder.Services.AddSingleton<OptionsValidator>();
        builder.Services.AddSingleton<PrivateDirectories>();
        builder.Services.AddSingleton<IValidateOptions<DatabaseOptions>>(sp => sp.GetRequiredService<OptionsValidator>());
        builder.Services.AddSingleton<IValidateOptions<HttpOptions>>(sp => sp.GetRequiredService<OptionsValidator>());
        builder.Services.AddSingleton<IValidateOptions<RateLimitOptions>>(sp => sp.GetRequiredService<OptionsValidator>());
        builder.Services.AddSingleton<IValidateOptions<AuthOptions>, AuthOptionsValidator>();
        builder.Services.AddOptionsCheck<OpsgateOptions>().AddOptionsCheck<DatabaseOptions>().AddOptionsCheck<HttpOptions>()
            .AddOptionsCheck<RateLimitOptions>().AddOptionsCheck<AuthOptions>();
        // What a killed process of this data dir left (SSH keys, extra vars) goes before any job runs again.
        builder.Services.AddStartupTask((sp, _) =>
        {
            sp.GetRequiredService<PrivateDirectories>().Sweep();
            return Task.CompletedTask;
        });
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ListeningAddress>();
    }

    private static void AddOpsgateLogging(this WebApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        // Each line logged inside a span (a request, a job, a step) carries its TraceId and SpanId among its scopes.
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        var json = builder.Configuration.GetValue<bool>("Logging:Json");
        builder.Services.AddSingleton(sp => new StartupConsole(json, sp.GetRequiredService<TimeProvider>()));
        if (json)
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.IncludeScopes = true;
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            });
        }
    }

    /// <summary>Kestrel parses --urls only while binding, where a bad one is an unhandled crash; parse them the same way first.</summary>
    private static void ValidateUrls(string? urls)
    {
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                _ = BindingAddress.Parse(url);
            }
            catch (FormatException)
            {
                throw new StartupException($"configuration error: urls '{url}' is not an address to listen on (for example {DefaultUrl})");
            }
        }
    }

    /// <summary>The one line to print for a problem that stops start-up, or null for a real crash.</summary>
    private static string? DescribeStartupProblem(Exception e) => e switch
    {
        StartupException s => s.Message,
        OptionsValidationException o => "configuration error: " + string.Join("; ", o.Failures),
        // The configuration binder names the key: "Failed to convert configuration value '…' at 'Http:MaxRequestBodyBytes' to type …".
        InvalidOperationException { InnerException: FormatException or InvalidCastException or OverflowException } i => "configuration error: " + i.Message,
        InvalidOperationException i when i.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal) => "configuration error: " + i.Message,
        IOException io when io.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase) => io.Message,
        _ => null,
    };
}
