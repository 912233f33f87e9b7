using Microsoft.Extensions.Hosting;

namespace KubeSim;

/// <summary>
/// A host lifetime that ignores process signals: an embedded KubeSim must not stop (or hold up) a test
/// process on Ctrl-C/SIGTERM; the command-line entry point handles signals itself.
/// </summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
