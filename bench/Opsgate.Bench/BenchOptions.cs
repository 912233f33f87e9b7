using System.Globalization;
using System.Reflection;

namespace Opsgate.Bench;

/// <summary>Command-line settings. Every run is bounded: a time per scenario and a request cap per scenario.</summary>
internal sealed class BenchOptions
{
    public const string Usage =
        """
        usage: opsgate-bench [options]
          --server PATH        opsgate.dll to run (default: src/Opsgate.Server/bin/<this build's configuration>/net10.0/opsgate.dll)
          --postgres CS        run Opsgate on PostgreSQL with this connection string (default: SQLite in a temp dir)
          --duration SECONDS   measured time per scenario (default 10, at most 300)
          --warmup SECONDS     unmeasured load before each scenario (default 3)
          --rounds N           times the whole set of scenarios is run (default 2, at most 10)
          --concurrency N      concurrent clients (default 32)
          --max-requests N     cap on requests per scenario, whatever the time (default 2000000)
          --port N             loopback port for Opsgate (default: a free one)
          --only SCENARIO      run only reads or only mutations (each still with its baseline)
        """;

    public string ServerDll { get; private set; } = "";
    public string? PostgresConnectionString { get; private set; }
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; private set; } = TimeSpan.FromSeconds(3);
    public int Rounds { get; private set; } = 2;
    public int Concurrency { get; private set; } = 32;
    public long MaxRequests { get; private set; } = 2_000_000;
    public int? Port { get; private set; }
    public string? Only { get; private set; }

    public bool Runs(string scenario) => Only is null || Only == scenario;

    public string DatabaseName => PostgresConnectionString is null ? "SQLite" : "PostgreSQL";

    /// <summary>Parses <paramref name="args"/>; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        string? server = null;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            switch (name)
            {
                case "--server": server = Value(); break;
                case "--postgres": o.PostgresConnectionString = Value(); break;
                case "--duration": o.Duration = TimeSpan.FromSeconds(Number(name, Value(), 1, 300)); break;
                case "--warmup": o.Warmup = TimeSpan.FromSeconds(Number(name, Value(), 0, 60)); break;
                case "--rounds": o.Rounds = (int)Number(name, Value(), 1, 10); break;
                case "--concurrency": o.Concurrency = (int)Number(name, Value(), 1, 1024); break;
                case "--max-requests": o.MaxRequests = Number(name, Value(), 1, 50_000_000); break;
                case "--port": o.Port = (int)Number(name, Value(), 1, 65535); break;
                case "--only":
                    o.Only = Value() is "reads" or "mutations" ? args[i] : throw new ArgumentException($"--only takes reads or mutations, not '{args[i]}'");
                    break;
                default: throw new ArgumentException($"unknown argument '{name}'");
            }
        }
        o.ServerDll = Path.GetFullPath(server ?? DefaultServerDll());
        if (!File.Exists(o.ServerDll))
            throw new ArgumentException($"{o.ServerDll} does not exist; build the server first (dotnet build -c Release) or pass --server");
        return o;
    }

    private static long Number(string name, string value, long min, long max) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{value}'");

    /// <summary>The server built in the same configuration as this program, found from the repository root.</summary>
    private static string DefaultServerDll()
    {
        var configuration = typeof(BenchOptions).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Opsgate.slnx")))
                return Path.Combine(dir.FullName, "src", "Opsgate.Server", "bin", configuration, "net10.0", "opsgate.dll");
        }
        throw new ArgumentException("cannot find the repository root (Opsgate.slnx) above this program; pass --server");
    }
}
