using System.Net;
using System.Net.Sockets;

namespace Opsgate.Cli.Tests.Infrastructure;

/// <summary>
/// A TCP relay on loopback in front of the server that can cut every open connection at once (with a reset), as a
/// load balancer restart or a flaky network would: for the stream's resume after a dropped connection.
/// </summary>
public sealed class DroppingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly List<Socket> _open = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private int _accepted;

    public DroppingProxy(Uri target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Resets every connection open now; later ones are relayed again.</summary>
    public void DropAll()
    {
        lock (_open)
        {
            foreach (var socket in _open)
            {
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            _open.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                Interlocked.Increment(ref _accepted);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await upstream.ConnectAsync(_target.Host, _target.Port, _stop.Token);
                }
                catch (SocketException)
                {
                    // The server is down (restarting): the client sees its connection reset, as it would without a relay.
                    upstream.Dispose();
                    client.LingerState = new LingerOption(true, 0);
                    client.Close();
                    continue;
                }
                lock (_open)
                {
                    _open.Add(client);
                    _open.Add(upstream);
                }
                _ = RelayAsync(client, upstream);
                _ = RelayAsync(upstream, client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private static async Task RelayAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0)
                    break;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Dropped on purpose, or the other side went away.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        DropAll();
        await _accepting;
        _stop.Dispose();
    }
}
