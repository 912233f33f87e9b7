using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Opsgate.Bench;

/// <summary>
/// One Opsgate server as a child process (<c>dotnet opsgate.dll</c>, no shell) on a loopback port with a
/// temp data dir. Disposing kills it and removes the dir; so does this process exiting, as a last resort.
/// </summary>
internal sealed class ServerProcess : ChildServer
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    private ServerProcess(Process process, string dataDir, Uri baseAddress, string adminKey)
        : base(process, dataDir, baseAddress)
    {
        AdminKey = adminKey;
        DataDir = dataDir;
    }

    public string AdminKey { get; }

    /// <summary>Its data dir, where the SQLite database is (<c>opsgate.db</c>).</summary>
    public string DataDir { get; }

    /// <param name="extraArgs">More server settings on its command line (e.g. <c>--Jobs:Workers=1</c>).</param>
    public static Task<ServerProcess> StartAsync(BenchOptions options, HttpClient http, CancellationToken ct, params string[] extraArgs) =>
        StartAsync(options, options.Port, null, http, ct, extraArgs);

    /// <param name="port">Its loopback port; null: a free one (a second server on the same database takes a free one, not --port).</param>
    /// <param name="adminKey">Its bootstrap admin key; null: a new one. A second server on the same database must take the first's:
    /// each start installs its bootstrap key as the administrator's, so a new one would lock out the first server's clients.</param>
    /// <param name="extraArgs">More server settings on its command line.</param>
    public static async Task<ServerProcess> StartAsync(BenchOptions options, int? port, string? adminKey, HttpClient http, CancellationToken ct, params string[] extraArgs)
    {
        port ??= ChildProcess.FreeLoopbackPort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}/");
        var dataDir = Directory.CreateTempSubdirectory("opsgate-bench-").FullName;
        adminKey ??= "og_bench_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

        var start = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dataDir,
        };
        foreach (var arg in new[] { options.ServerDll, "--urls", $"http://127.0.0.1:{port}", "--DataDir", dataDir, "--Logging:LogLevel:Default=Warning" }.Concat(extraArgs))
            start.ArgumentList.Add(arg);
        // Only the settings below reach the server, not whatever OPSGATE_ variables this shell happens to have.
        foreach (var name in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(IsOpsgateVariable).ToList())
            start.Environment.Remove(name);
        start.Environment["OPSGATE_AUTH__BOOTSTRAPADMINKEY"] = adminKey;
        // The default limit (100 requests/s per principal) would measure the limiter, not the server.
        start.Environment["OPSGATE_RATELIMIT__ENABLED"] = "false";
        if (options.PostgresConnectionString is { } cs)
        {
            start.Environment["OPSGATE_DATABASE__PROVIDER"] = "postgres";
            start.Environment["OPSGATE_DATABASE__CONNECTIONSTRING"] = cs;
        }

        var process = Process.Start(start) ?? throw new BenchException("could not start dotnet");
        process.OutputDataReceived += (_, e) => Forward(e.Data);
        process.ErrorDataReceived += (_, e) => Forward(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, dataDir, baseAddress, adminKey);
        try
        {
            await server.WaitReadyAsync(http, ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>A line of /proc/&lt;pid&gt;/status in bytes: VmRSS (resident now) or VmHWM (the peak so far).</summary>
    public long ProcStatusBytes(string field)
    {
        var line = File.ReadLines($"/proc/{Process.Id}/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            ?? throw new BenchException($"/proc/{Process.Id}/status has no {field}");
        var kb = line[(field.Length + 1)..].Trim().Split(' ')[0];
        return long.Parse(kb, System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>CPU time the server has used so far (user + system, from /proc/&lt;pid&gt;/stat).</summary>
    public TimeSpan CpuTime()
    {
        var stat = File.ReadAllText($"/proc/{Process.Id}/stat");
        // Fields after the command name (which may hold spaces, inside parentheses): utime and stime are the 12th and 13th.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
    }

    private static bool IsOpsgateVariable(string name) => name.StartsWith("OPSGATE_", StringComparison.OrdinalIgnoreCase);

    private static void Forward(string? line)
    {
        if (line is not null)
            Console.Error.WriteLine($"[opsgate] {line}");
    }

    /// <summary>Polls /health/ready until it answers 200, the server exits, or <see cref="ReadyTimeout"/> passes.</summary>
    private async Task WaitReadyAsync(HttpClient http, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(ReadyTimeout.TotalSeconds * Stopwatch.Frequency);
        var ready = new Uri(BaseAddress, "health/ready");
        while (true)
        {
            if (Process.HasExited)
                throw new BenchException($"opsgate exited with code {Process.ExitCode} before it was ready (its output is above)");
            try
            {
                using var response = await http.GetAsync(ready, ct);
                if (response.StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            if (Stopwatch.GetTimestamp() > deadline)
                throw new BenchException($"opsgate was not ready at {ready} within {ReadyTimeout.TotalSeconds} s");
            await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
        }
    }
}

/// <summary>An expected way for a run to fail (the server would not start, for one): reported in one line.</summary>
internal sealed class BenchException(string message) : Exception(message);
