using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Tests.Engine;

/// <summary>
/// A step kind (<c>test.gate</c>) the test drives: it counts how often it was entered and interrupted, fails while
/// <see cref="Fail"/> is set, and otherwise holds until <see cref="Release"/> (or its token is cancelled).
/// </summary>
internal sealed class GateStep : IStepExecutor
{
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _entered;
    private int _cancelled;

    public string Kind => "test.gate";
    public string Description => "held by the test";
    public IReadOnlyList<StepInput> Inputs { get; } = [];

    public int Entered => Volatile.Read(ref _entered);
    public int Cancelled => Volatile.Read(ref _cancelled);
    public volatile bool Fail;

    public void Release() => _released.TrySetResult();

    /// <summary>Registers this instance with the server.</summary>
    public void AddTo(IServiceCollection services) => services.AddSingleton<IStepExecutor>(this);

    public async Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _entered);
        if (Fail)
            throw new StepFailedException("the gate was told to fail");
        try
        {
            await _released.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _cancelled);
            throw;
        }
        return new StepOutcome("passed the gate");
    }

    /// <summary>Waits until <paramref name="condition"/> holds, failing after <paramref name="timeout"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(15);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < limit, $"timed out after {limit} waiting for {what}");
            await Task.Delay(10);
        }
    }

    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(15);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(watch.Elapsed < limit, $"timed out after {limit} waiting for {what}");
            await Task.Delay(10);
        }
    }
}

/// <summary>Keeps the server's log entries (at the configured level) so a test can wait for one.</summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(int EventId, string Message)> _entries = new();

    public IReadOnlyCollection<(int EventId, string Message)> Entries => _entries;

    public void AddTo(IServiceCollection services) => services.AddSingleton<ILoggerProvider>(this);

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs logs) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            logs._entries.Enqueue((eventId.Id, formatter(state, exception)));
    }
}
