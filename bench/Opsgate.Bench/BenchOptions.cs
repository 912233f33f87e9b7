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
          --only LIST          comma-separated scenarios to run: reads, mutations, kube, jobs, jobs-memory, jobs-list, ansible, ansible-large, events, ui (default: all)
          --kubesim PATH       KubeSim.dll for the kube scenario (default: tests/KubeSim/bin/<configuration>/net10.0/KubeSim.dll)
          --kube-replicas MODE alternate (default: 2, 3, 2, ... so KubeSim's controller creates and deletes pods) or constant (always 2)
          --kube-paced PERCENT after each kube round, direct and through Opsgate again at the same paced rate: this percentage
                               of the round's direct rate, shared by the clients (default 25; 0: no such legs)
          --jobs N             jobs submitted in the measured part of the jobs scenario (default 10000)
          --job-clients N      concurrent submitting clients in the jobs scenario (default 16)
          --waiting-jobs N     jobs left waiting in the jobs-memory scenario (default 1000)
          --list-jobs N        jobs stored before the jobs-list scenario reads the first page (default 10000)
          --ansible-hosts N    local hosts in the ansible (overhead) scenario (default 100)
          --ansible-runs N     runs of raw ansible-playbook and of the Opsgate job each, alternating (default 3)
          --ansible-shards N   the ansible scenario's third leg: the same job with shards N (default 4; 0 or 1: no such leg)
          --ansible-unsandboxed true|false  the ansible scenario's leg on a server with Ansible:Sandbox=none (SQLite only; default true)
          --large-hosts N      hosts in the ansible-large inventory (default 20000)
          --large-shards N|auto  pass shards in the ansible-large job's params (default: not passed)
          --large-cap SECONDS  longest wait for the first task result in ansible-large, raw and Opsgate each (default 120)
          --events N           events per run in the events scenario (default 300000)
        """;

    public static readonly string[] Scenarios = ["reads", "mutations", "kube", "jobs", "jobs-memory", "jobs-list", "ansible", "ansible-large", "events", "ui"];

    public string ServerDll { get; private set; } = "";
    public string? PostgresConnectionString { get; private set; }
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; private set; } = TimeSpan.FromSeconds(3);
    public int Rounds { get; private set; } = 2;
    public int Concurrency { get; private set; } = 32;
    public long MaxRequests { get; private set; } = 2_000_000;
    public int? Port { get; private set; }
    public IReadOnlySet<string>? Only { get; private set; }
    public string KubeSimDll { get; private set; } = "";
    public bool KubeAlternate { get; private set; } = true;
    public int KubePacedPercent { get; private set; } = 25;
    public int Jobs { get; private set; } = 10_000;
    public int JobClients { get; private set; } = 16;
    public int WaitingJobs { get; private set; } = 1_000;
    public int ListJobs { get; private set; } = 10_000;
    public int AnsibleHosts { get; private set; } = 100;
    public int AnsibleRuns { get; private set; } = 3;
    public int AnsibleShards { get; private set; } = 4;

    /// <summary>The ansible scenario's Ansible:Sandbox=none leg (a third server); <c>--ansible-unsandboxed false</c> leaves it out.</summary>
    public bool AnsibleUnsandboxed { get; private set; } = true;
    public int LargeHosts { get; private set; } = 20_000;
    public string? LargeShards { get; private set; }
    public TimeSpan LargeCap { get; private set; } = TimeSpan.FromSeconds(120);
    public int Events { get; private set; } = 300_000;

    public bool Runs(string scenario) => Only is null || Only.Contains(scenario);

    public string DatabaseName => PostgresConnectionString is null ? "SQLite" : "PostgreSQL";

    /// <summary>Parses <paramref name="args"/>; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        string? server = null;
        string? kubesim = null;
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
                    var only = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (only.Length == 0 || only.Any(x => !Scenarios.Contains(x)))
                        throw new ArgumentException($"--only takes a comma-separated list of {string.Join(", ", Scenarios)}, not '{args[i]}'");
                    o.Only = only.ToHashSet(StringComparer.Ordinal);
                    break;
                case "--kubesim": kubesim = Value(); break;
                case "--kube-replicas":
                    o.KubeAlternate = Value() switch
                    {
                        "alternate" => true,
                        "constant" => false,
                        _ => throw new ArgumentException($"--kube-replicas takes alternate or constant, not '{args[i]}'"),
                    };
                    break;
                case "--kube-paced": o.KubePacedPercent = (int)Number(name, Value(), 0, 100); break;
                case "--jobs": o.Jobs = (int)Number(name, Value(), 1, 1_000_000); break;
                case "--job-clients": o.JobClients = (int)Number(name, Value(), 1, 1024); break;
                case "--waiting-jobs": o.WaitingJobs = (int)Number(name, Value(), 1, 100_000); break;
                case "--list-jobs": o.ListJobs = (int)Number(name, Value(), 100, 1_000_000); break;
                case "--ansible-hosts": o.AnsibleHosts = (int)Number(name, Value(), 1, 10_000); break;
                case "--ansible-runs": o.AnsibleRuns = (int)Number(name, Value(), 1, 20); break;
                case "--ansible-shards": o.AnsibleShards = (int)Number(name, Value(), 0, 64); break;
                case "--ansible-unsandboxed": o.AnsibleUnsandboxed = Value() is "true" or "1"; break;
                case "--large-hosts": o.LargeHosts = (int)Number(name, Value(), 1, 1_000_000); break;
                case "--large-shards":
                    o.LargeShards = Value();
                    if (o.LargeShards != "auto")
                        Number(name, o.LargeShards, 1, 1_000);
                    break;
                case "--large-cap": o.LargeCap = TimeSpan.FromSeconds(Number(name, Value(), 1, 3_600)); break;
                case "--events": o.Events = (int)Number(name, Value(), 1_000, 10_000_000); break;
                default: throw new ArgumentException($"unknown argument '{name}'");
            }
        }
        o.ServerDll = Path.GetFullPath(server ?? DefaultDll("src/Opsgate.Server", "opsgate.dll"));
        if (!File.Exists(o.ServerDll))
            throw new ArgumentException($"{o.ServerDll} does not exist; build the server first (dotnet build -c Release) or pass --server");
        if (o.Runs("kube"))
        {
            o.KubeSimDll = Path.GetFullPath(kubesim ?? DefaultDll("tests/KubeSim", "KubeSim.dll"));
            if (!File.Exists(o.KubeSimDll))
                throw new ArgumentException($"{o.KubeSimDll} does not exist; build it first (dotnet build tests/KubeSim -c Release) or pass --kubesim");
        }
        if ((o.Runs("ansible") || o.Runs("ansible-large")) && !File.Exists("/usr/bin/ansible-playbook") && !File.Exists("/usr/local/bin/ansible-playbook"))
            throw new ArgumentException("the ansible scenarios need ansible-playbook in /usr/bin or /usr/local/bin (apt-get install ansible), or leave them out with --only");
        return o;
    }

    private static long Number(string name, string value, long min, long max) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{value}'");

    /// <summary>A project's output built in the same configuration as this program, found from the repository root.</summary>
    private static string DefaultDll(string project, string dll)
    {
        var configuration = typeof(BenchOptions).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Opsgate.slnx")))
                return Path.Combine(dir.FullName, project, "bin", configuration, "net10.0", dll);
        }
        throw new ArgumentException($"cannot find the repository root (Opsgate.slnx) above this program to find {dll}; pass its path");
    }
}
