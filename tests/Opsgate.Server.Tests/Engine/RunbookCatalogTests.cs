using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Hosting;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Engine;

public sealed class RunbookCatalogTests
{
    private const string Restart = """
        name: restart-web
        parameters:
          - name: namespace
            type: string
            required: true
        steps:
          - name: restart
            kind: k8s.restart
            with:
              cluster: default
              namespace: "{{ params.namespace }}"
              name: web
        """;

    private static RunbookCatalog Catalog(string? directory, ILogger<RunbookCatalog>? logger = null) =>
        new(FakeExecutors.List, Options.Create(new JobsOptions { RunbookDirectory = directory }), logger ?? NullLogger<RunbookCatalog>.Instance);

    [Fact]
    public void Without_a_directory_the_built_in_runbooks_are_listed_by_name()
    {
        var catalog = Catalog(null);
        catalog.Validate();

        Assert.Equal(["ansible-playbook", "ansible-shard", "noop", "pg-rebuild"], catalog.All.Select(r => r.Name));
        Assert.Equal("built-in/noop.yaml", catalog.Find("noop")!.Source);
        Assert.Null(catalog.Find("nope"));
        Assert.Equal(9, catalog.Executors.Count);
    }

    [Fact]
    public void A_directory_adds_runbooks_and_one_with_a_built_in_name_replaces_it()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "restart.yml"), Restart);
        var replacement = Path.Combine(dir.Path, "pg.yaml");
        File.WriteAllText(replacement, """
            name: pg-rebuild
            description: our own rebuild
            steps:
              - name: only
                kind: noop
            """);
        File.WriteAllText(Path.Combine(dir.Path, "notes.txt"), "not a runbook");
        var logger = new ListLogger();

        var catalog = Catalog(dir.Path, logger);
        catalog.Validate();

        Assert.Equal(["ansible-playbook", "ansible-shard", "noop", "pg-rebuild", "restart-web"], catalog.All.Select(r => r.Name));
        var pg = catalog.Find("pg-rebuild")!;
        Assert.Equal("our own rebuild", pg.Description);
        Assert.Equal(replacement, pg.Source);
        Assert.Equal(Path.Combine(dir.Path, "restart.yml"), catalog.Find("restart-web")!.Source);
        Assert.Contains($"Runbook pg-rebuild from {replacement} replaces the one from built-in/pg-rebuild.yaml", logger.Lines);
        Assert.Contains($"Loaded 5 runbooks: 4 built-in, 2 from {dir.Path}", logger.Lines);
    }

    [Fact]
    public void A_broken_file_in_the_directory_stops_start_up_with_its_path_and_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "restart.yaml"), Restart);
        var broken = Path.Combine(dir.Path, "broken.yaml");
        File.WriteAllText(broken, Restart.Replace("k8s.restart", "k8s.reboot", StringComparison.Ordinal).Replace("restart-web", "reboot-web", StringComparison.Ordinal));
        var catalog = Catalog(dir.Path);

        var e = Assert.Throws<StartupException>(catalog.Validate);

        Assert.StartsWith($"runbook error: {broken} line 8: step 'restart' has an unknown kind 'k8s.reboot' (known kinds: ", e.Message, StringComparison.Ordinal);
        // Later uses fail the same way rather than serving a partial catalog.
        Assert.Throws<StartupException>(() => catalog.All);
    }

    [Fact]
    public void Two_files_with_the_same_runbook_name_stop_start_up_naming_both()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "a.yaml"), Restart);
        File.WriteAllText(Path.Combine(dir.Path, "b.yaml"), Restart);

        var e = Assert.Throws<StartupException>(Catalog(dir.Path).Validate);

        Assert.Equal($"{Path.Combine(dir.Path, "b.yaml")}: runbook 'restart-web' is also defined in {Path.Combine(dir.Path, "a.yaml")}", e.Message);
    }

    [Fact]
    public void A_missing_directory_stops_start_up_naming_the_setting()
    {
        using var dir = new TempDir();
        var missing = Path.Combine(dir.Path, "runbooks");

        var e = Assert.Throws<StartupException>(Catalog(missing).Validate);

        Assert.Equal($"configuration error: Jobs:RunbookDirectory '{missing}' is not a directory", e.Message);
    }

    [Fact]
    public void An_oversized_file_is_refused_without_loading_it()
    {
        using var dir = new TempDir();
        var big = Path.Combine(dir.Path, "big.yaml");
        File.WriteAllText(big, "name: big\n# " + new string('x', 300 * 1024) + "\n");

        var e = Assert.Throws<StartupException>(Catalog(dir.Path).Validate);

        Assert.Equal($"runbook error: {big}: is larger than 256 KiB", e.Message);
    }

    [Fact]
    public void Two_executors_with_the_same_kind_are_refused()
    {
        var executors = FakeExecutors.List.Append(FakeExecutors.ByKind["noop"]);

        var e = Assert.Throws<StartupException>(() => new RunbookCatalog(executors, Options.Create(new JobsOptions()), NullLogger<RunbookCatalog>.Instance));

        Assert.StartsWith("two step executors have kind 'noop'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddRunbooks_reads_the_directory_from_Jobs_configuration()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "restart.yaml"), Restart);
        var builder = WebApplication.CreateBuilder();
        builder.Configuration["Jobs:RunbookDirectory"] = dir.Path;
        foreach (var executor in FakeExecutors.List)
            builder.Services.AddSingleton(executor);
        builder.AddRunbooks();
        using var services = builder.Services.BuildServiceProvider();

        var catalog = services.GetRequiredService<RunbookCatalog>();
        catalog.Validate();

        Assert.NotNull(catalog.Find("restart-web"));
        Assert.NotNull(catalog.Find("pg-rebuild"));
    }

    private sealed class ListLogger : ILogger<RunbookCatalog>
    {
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines => _lines;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Add(formatter(state, exception));
    }
}
