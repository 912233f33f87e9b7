using System.Collections.Frozen;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>
/// Every runbook jobs can be started from: the built-in ones shipped inside the binary, then every *.yaml / *.yml in
/// <c>Jobs:RunbookDirectory</c>; a file with a built-in's name replaces it. Loaded once, on <see cref="Validate"/> (or
/// first use): any broken runbook stops start-up with its file and line, rather than failing the first job.
/// </summary>
internal sealed partial class RunbookCatalog
{
    private const string ResourcePrefix = "runbooks/";
    private readonly Lazy<Loaded> _runbooks;

    public RunbookCatalog(IEnumerable<IStepExecutor> executors, IOptions<JobsOptions> options, ILogger<RunbookCatalog> logger)
    {
        Executors = IndexExecutors(executors);
        _runbooks = new Lazy<Loaded>(() => LoadAll(options.Value.RunbookDirectory, logger));
    }

    /// <summary>The registered step kinds, by kind; runbooks were checked against these.</summary>
    public FrozenDictionary<string, IStepExecutor> Executors { get; }

    /// <summary>Ordered by name.</summary>
    public IReadOnlyCollection<Runbook> All => _runbooks.Value.All;

    public Runbook? Find(string name) => _runbooks.Value.ByName.GetValueOrDefault(name);

    /// <summary>Loads every runbook now.</summary>
    /// <exception cref="StartupException">A runbook is broken (the message names its file and line) or the directory is missing.</exception>
    public void Validate() => _ = _runbooks.Value;

    private sealed record Loaded(FrozenDictionary<string, Runbook> ByName, IReadOnlyList<Runbook> All);

    private Loaded LoadAll(string? directory, ILogger logger)
    {
        var runbooks = new SortedDictionary<string, Runbook>(StringComparer.Ordinal);
        foreach (var (source, yaml) in BuiltIn())
        {
            var runbook = Load(yaml, source);
            runbooks.Add(runbook.Name, runbook);
        }
        var builtIn = runbooks.Count;
        var fromDirectory = 0;
        if (!string.IsNullOrWhiteSpace(directory))
        {
            var path = Path.GetFullPath(directory);
            if (!Directory.Exists(path))
                throw new StartupException($"configuration error: Jobs:RunbookDirectory '{path}' is not a directory");
            var files = Directory.EnumerateFiles(path, "*.yaml").Concat(Directory.EnumerateFiles(path, "*.yml")).Order(StringComparer.Ordinal);
            var seen = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var file in files)
            {
                var runbook = Load(ReadFile(file), file);
                if (seen.TryGetValue(runbook.Name, out var other))
                    throw new StartupException($"{file}: runbook '{runbook.Name}' is also defined in {other}");
                seen.Add(runbook.Name, file);
                if (runbooks.TryGetValue(runbook.Name, out var replaced))
                    LogReplaced(logger, runbook.Name, file, replaced.Source);
                runbooks[runbook.Name] = runbook;
                fromDirectory++;
            }
        }
        LogLoaded(logger, runbooks.Count, builtIn, fromDirectory, directory ?? "(none)");
        return new Loaded(runbooks.ToFrozenDictionary(StringComparer.Ordinal), runbooks.Values.ToList());
    }

    private Runbook Load(string yaml, string source)
    {
        try
        {
            return RunbookLoader.Load(yaml, source, Executors);
        }
        catch (RunbookException e)
        {
            throw new StartupException($"runbook error: {e.Message}", e);
        }
    }

    private static string ReadFile(string file)
    {
        try
        {
            // Checked before reading so a huge file is refused without being read into memory.
            if (new FileInfo(file).Length > RunbookYaml.MaxBytes)
                throw new StartupException($"runbook error: {file}: is larger than {RunbookYaml.MaxBytes / 1024} KiB");
            return File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"runbook error: {file}: cannot be read: {e.Message}", e);
        }
    }

    private static IEnumerable<(string Source, string Yaml)> BuiltIn()
    {
        var assembly = typeof(RunbookCatalog).Assembly;
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return ("built-in/" + resource[ResourcePrefix.Length..], reader.ReadToEnd());
        }
    }

    private static FrozenDictionary<string, IStepExecutor> IndexExecutors(IEnumerable<IStepExecutor> executors)
    {
        var byKind = new Dictionary<string, IStepExecutor>(StringComparer.Ordinal);
        foreach (var executor in executors)
        {
            if (!byKind.TryAdd(executor.Kind, executor))
                throw new StartupException($"two step executors have kind '{executor.Kind}': {byKind[executor.Kind].GetType().Name} and {executor.GetType().Name}");
        }
        return byKind.ToFrozenDictionary(StringComparer.Ordinal);
    }

    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Runbook {Name} from {File} replaces the one from {Replaced}")]
    private static partial void LogReplaced(ILogger logger, string name, string file, string replaced);

    [LoggerMessage(EventId = 701, Level = LogLevel.Information, Message = "Loaded {Count} runbooks: {BuiltIn} built-in, {FromDirectory} from {Directory}")]
    private static partial void LogLoaded(ILogger logger, int count, int builtIn, int fromDirectory, string directory);
}

internal static class RunbooksExtensions
{
    /// <summary>Registers the runbook catalog and <c>Jobs:</c> settings (the engine validates the catalog at start).</summary>
    public static void AddRunbooks(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobsOptions>().Bind(builder.Configuration.GetSection(JobsOptions.Section));
        builder.Services.TryAddSingleton<RunbookCatalog>();
    }
}
