using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Opsgate.Server.Tests.Infrastructure;

/// <summary>
/// The built opsgate binary run as an operator runs it: <c>dotnet opsgate.dll</c> as a child process in its own
/// working directory (so the default DataDir, <c>data</c>, is fresh), listening on a loopback port the OS picks
/// (<c>ASPNETCORE_URLS=http://127.0.0.1:0</c> unless the test passes --urls), with stdout and stderr captured line
/// by line. Killed on dispose if it is still running.
/// </summary>
public sealed partial class OpsgateProcess : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly Task _exited;
    private readonly Stopwatch _sinceStart;
    private readonly Lock _lock = new();
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly List<HttpClient> _clients = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Uri? _baseAddress;

    private OpsgateProcess(Process process, string workingDirectory)
    {
        _process = process;
        WorkingDirectory = workingDirectory;
        _process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        _sinceStart = Stopwatch.StartNew();
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        // WaitForExitAsync also waits until both streams are read to the end.
        _exited = _process.WaitForExitAsync().ContinueWith(_ => Signal(), TaskScheduler.Default);
    }

    /// <summary>Where opsgate.dll was built: the test project references the server, so it is copied next to the tests.</summary>
    public static string ServerDll
    {
        get
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "opsgate.dll");
            Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first");
            return dll;
        }
    }

    public string WorkingDirectory { get; }

    /// <summary>The default DataDir, relative to the working directory.</summary>
    public string DataDir => Path.Combine(WorkingDirectory, "data");

    public Uri BaseAddress => _baseAddress ?? throw new InvalidOperationException("the server is not ready yet");

    /// <summary>From process start until /health/ready answered 200.</summary>
    public TimeSpan TimeToReady { get; private set; }

    public bool HasExited => _exited.IsCompleted;

    public IReadOnlyList<string> StdoutLines
    {
        get
        {
            lock (_lock)
                return [.. _stdout];
        }
    }

    public IReadOnlyList<string> StderrLines
    {
        get
        {
            lock (_lock)
                return [.. _stderr];
        }
    }

    /// <summary>Everything the process printed so far, for assertions and failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_lock)
                return $"--- stdout ---\n{string.Join('\n', _stdout)}\n--- stderr ---\n{string.Join('\n', _stderr)}";
        }
    }

    /// <summary>Starts opsgate in <paramref name="workingDirectory"/> with <paramref name="args"/> and, on top of a clean copy of this process's environment, <paramref name="environment"/>.</summary>
    public static OpsgateProcess Start(string workingDirectory, IEnumerable<string>? args = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(ServerDll);
        foreach (var arg in args ?? [])
            info.ArgumentList.Add(arg);
        // Only what the test sets may configure the child: no OPSGATE_ or ASPNETCORE_ variables leak in from the runner.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("OPSGATE_", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(name);
        info.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            info.Environment[name] = value;
        return new OpsgateProcess(new Process { StartInfo = info }, workingDirectory);
    }

    /// <summary>Starts opsgate and waits until it is ready; fails the test with its output if it exits or times out instead.</summary>
    public static async Task<OpsgateProcess> StartReadyAsync(string workingDirectory, IEnumerable<string>? args = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var process = Start(workingDirectory, args, environment);
        try
        {
            await process.WaitUntilReadyAsync();
            return process;
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits for the start-up line, takes the address from it, then polls /health/ready until it answers 200.</summary>
    public async Task WaitUntilReadyAsync()
    {
        var line = await WaitForStdoutAsync(l => l.Contains("Opsgate listening on ", StringComparison.Ordinal), "the start-up line");
        _baseAddress = new Uri(ListeningOn().Match(line) is { Success: true } m ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException($"no address in the start-up line: {line}"));
        using var client = new HttpClient { BaseAddress = _baseAddress, Timeout = TimeSpan.FromSeconds(10) };
        using var timeout = new CancellationTokenSource(Timeout);
        while (true)
        {
            try
            {
                using var response = await client.GetAsync("/health/ready", timeout.Token);
                if (response.IsSuccessStatusCode)
                    break;
            }
            catch (HttpRequestException)
            {
                // Not accepting connections yet.
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                throw new Xunit.Sdk.XunitException($"/health/ready did not answer 200 within {Timeout.TotalSeconds} s\n{Output}");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), timeout.Token);
        }
        TimeToReady = _sinceStart.Elapsed;
    }

    /// <summary>The first stdout line matching <paramref name="predicate"/>; fails if the process exits or the time runs out first.</summary>
    public async Task<string> WaitForStdoutAsync(Func<string, bool> predicate, string what)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (_stdout.FirstOrDefault(predicate) is { } line)
                    return line;
                changed = _changed.Task;
            }
            if (HasExited)
                throw new Xunit.Sdk.XunitException($"opsgate exited with {_process.ExitCode} before printing {what}\n{Output}");
            try
            {
                await changed.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"opsgate did not print {what} within {Timeout.TotalSeconds} s\n{Output}");
            }
        }
    }

    /// <summary>Waits for the process to exit on its own and returns its exit code; fails if it is still running after the timeout.</summary>
    public async Task<int> WaitForExitAsync()
    {
        try
        {
            await _exited.WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"opsgate was still running after {Timeout.TotalSeconds} s\n{Output}");
        }
        return _process.ExitCode;
    }

    /// <summary>Problems are reported in words: nothing printed so far carries an exception or a stack trace.</summary>
    public void AssertNoStackTrace()
    {
        var output = Output;
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }

    /// <summary>An HTTP client for this server that sends <paramref name="key"/> as X-API-Key (none: anonymous).</summary>
    public HttpClient Client(string? key = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null)
            client.DefaultRequestHeaders.Add("X-API-Key", key);
        lock (_lock)
            _clients.Add(client);
        return client;
    }

    /// <summary>Kills the process (as a crash or an orchestrator would) and waits until it is gone.</summary>
    public async Task StopAsync()
    {
        if (!HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited between the check and the kill.
            }
        }
        await _exited.WaitAsync(Timeout);
    }

    /// <summary>
    /// SIGKILL to the server process alone, as the OOM killer or a <c>kill -9</c> does: its children (ansible-playbook
    /// in its own process group) are not touched and must notice by themselves. <see cref="StopAsync"/> kills the
    /// whole process tree instead.
    /// </summary>
    public async Task KillServerOnlyAsync()
    {
        if (!HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: false);
            }
            catch (InvalidOperationException)
            {
                // It exited between the check and the kill.
            }
        }
        await _exited.WaitAsync(Timeout);
    }

    public async ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            foreach (var client in _clients)
                client.Dispose();
        }
        await StopAsync();
        _process.Dispose();
    }

    private void Append(List<string> lines, string? line)
    {
        if (line is null)
            return;
        lock (_lock)
            lines.Add(line);
        Signal();
    }

    private void Signal()
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    [GeneratedRegex(@"listening on (https?://[^\s,;]+)")]
    private static partial Regex ListeningOn();
}
