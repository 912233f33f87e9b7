using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Opsgate.Server.Kubernetes;

/// <summary>
/// Runs a kubeconfig exec credential plugin (client.authentication.k8s.io/v1 ExecCredential protocol) without a
/// shell and caches the token it returns until shortly before its expirationTimestamp.
/// </summary>
internal sealed class ExecCredentialProvider(ExecConfig config, TimeProvider time) : IDisposable
{
    private static readonly TimeSpan PluginTimeout = TimeSpan.FromSeconds(30);
    private readonly SemaphoreSlim _lock = new(1, 1);
    private string? _token;
    private DateTimeOffset? _expires;

    public async ValueTask<string> GetTokenAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            if (_token is not null && (_expires is null || _expires.Value - TimeSpan.FromSeconds(10) > time.GetUtcNow()))
                return _token;
            (_token, _expires) = await RunAsync(ct);
            return _token;
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose() => _lock.Dispose();

    /// <summary>Forget the cached token (after the server refused it).</summary>
    public void Invalidate() => _token = null;

    private async Task<(string Token, DateTimeOffset? Expires)> RunAsync(CancellationToken ct)
    {
        var start = new ProcessStartInfo(config.Command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in config.Args)
            start.ArgumentList.Add(arg);
        foreach (var env in config.Env)
            start.Environment[env.Name] = env.Value;
        start.Environment["KUBERNETES_EXEC_INFO"] = new JsonObject
        {
            ["apiVersion"] = config.ApiVersion,
            ["kind"] = "ExecCredential",
            ["spec"] = new JsonObject { ["interactive"] = false },
        }.ToJsonString();

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new KubeconfigException($"exec plugin '{config.Command}' could not be started: {e.Message}");
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(PluginTimeout);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new KubeconfigException($"exec plugin '{config.Command}' did not finish within {PluginTimeout.TotalSeconds:0} s");
        }
        if (process.ExitCode != 0)
            throw new KubeconfigException($"exec plugin '{config.Command}' failed (exit {process.ExitCode}): {Truncate(await stderr)}");

        JsonNode? credential;
        try
        {
            credential = JsonNode.Parse(await stdout);
        }
        catch (JsonException)
        {
            throw new KubeconfigException($"exec plugin '{config.Command}' did not print an ExecCredential JSON object");
        }
        var status = credential?["status"];
        var token = status?["token"]?.GetValue<string>();
        if (string.IsNullOrEmpty(token))
            throw new KubeconfigException($"exec plugin '{config.Command}' returned no status.token (client certificates from exec plugins are not supported)");
        DateTimeOffset? expires = status?["expirationTimestamp"]?.GetValue<string>() is { } stamp && DateTimeOffset.TryParse(stamp, System.Globalization.CultureInfo.InvariantCulture, out var at)
            ? at
            : null;
        return (token, expires);
    }

    private static string Truncate(string s) => s.Length <= 300 ? s.Trim() : s[..300].Trim() + "…";
}
