using Opsgate.Server.Persistence;

namespace Opsgate.Server.Tests.Persistence;

/// <summary>Writers take turns (on SQLite one at a time); the job engine's writers go before other waiting writers, and a cancelled waiter leaves the line.</summary>
public sealed class WriteTurnsTests
{
    /// <summary>Takes a turn, notes <paramref name="name"/> in <paramref name="order"/>, lets the next writer in.</summary>
    private static async Task WriteInTurnAsync(WriteTurns turns, List<string> order, string name, bool engine)
    {
        await turns.EnterAsync(engine, CancellationToken.None);
        lock (order)
            order.Add(name);
        turns.Exit();
    }

    [Fact]
    public async Task An_engine_writer_goes_before_writers_that_waited_longer_and_the_others_keep_their_order()
    {
        var turns = new WriteTurns();
        await turns.EnterAsync(engine: false, CancellationToken.None);
        var order = new List<string>();
        Task WriteAsync(string name, bool engine) => WriteInTurnAsync(turns, order, name, engine);
        var first = WriteAsync("api 1", engine: false);
        var second = WriteAsync("api 2", engine: false);
        var engineWrite = WriteAsync("engine", engine: true);
        Assert.False(first.IsCompleted || second.IsCompleted || engineWrite.IsCompleted);

        turns.Exit();
        await Task.WhenAll(first, second, engineWrite).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(["engine", "api 1", "api 2"], order);
    }

    [Fact]
    public async Task A_busy_engine_lets_a_waiting_writer_in_after_sixteen_turns_in_a_row()
    {
        var turns = new WriteTurns();
        await turns.EnterAsync(engine: false, CancellationToken.None);
        var order = new List<string>();
        Task WriteAsync(string name, bool engine) => WriteInTurnAsync(turns, order, name, engine);
        var writes = new List<Task> { WriteAsync("api", engine: false) };
        writes.AddRange(Enumerable.Range(1, 18).Select(i => WriteAsync($"engine {i}", engine: true)));

        turns.Exit();
        await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([.. Enumerable.Range(1, 16).Select(i => $"engine {i}"), "api", "engine 17", "engine 18"], order);
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_the_line_and_the_turn_passes_to_the_next()
    {
        var turns = new WriteTurns();
        await turns.EnterAsync(engine: false, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var cancelled = turns.EnterAsync(engine: true, cancel.Token);
        var next = turns.EnterAsync(engine: false, CancellationToken.None);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        turns.Exit();
        await next.WaitAsync(TimeSpan.FromSeconds(10));

        // The turn is held by `next` now: a newcomer waits until it is let go.
        var later = turns.EnterAsync(engine: true, CancellationToken.None);
        Assert.False(later.IsCompleted);
        turns.Exit();
        await later.WaitAsync(TimeSpan.FromSeconds(10));
        turns.Exit();
        await turns.EnterAsync(engine: false, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task With_room_for_two_two_writers_go_at_once_and_a_freed_turn_goes_to_the_engine_first()
    {
        var turns = new WriteTurns(capacity: 2);
        await turns.EnterAsync(engine: false, CancellationToken.None);
        await turns.EnterAsync(engine: false, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var order = new List<string>();
        var api = WriteInTurnAsync(turns, order, "api", engine: false);
        var engineWrite = WriteInTurnAsync(turns, order, "engine", engine: true);
        Assert.False(api.IsCompleted || engineWrite.IsCompleted);

        turns.Exit();
        await Task.WhenAll(api, engineWrite).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(["engine", "api"], order);
        // One turn is still held: one more writer goes at once, the next waits for it.
        await turns.EnterAsync(engine: false, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var third = turns.EnterAsync(engine: true, CancellationToken.None);
        Assert.False(third.IsCompleted);
        turns.Exit();
        await third.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
