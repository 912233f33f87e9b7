using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Opsgate.Bench;

/// <summary>
/// The kube scenario's second baseline: the least any HTTP gateway in front of KubeSim does on this machine. A separate
/// process, like Opsgate, that takes <c>POST /scale {"replicas":N}</c>, sends the same merge patch to KubeSim as the direct
/// run, reads the answer and replies with a small JSON object; no authentication, no authorization, no validation, no
/// audit, no database, no metrics. What Opsgate adds over the direct run beyond what this adds is Opsgate's own work.
/// Run as <c>opsgate-bench bare-forwarder PORT UPSTREAM</c> (started by the benchmark, not by hand).
/// </summary>
internal sealed class BareForwarder : ChildServer
{
    public const string Command = "bare-forwarder";
    private static readonly MediaTypeHeaderValue MergePatch = new("application/merge-patch+json");

    private BareForwarder(Process process, string dir, Uri baseAddress)
        : base(process, dir, baseAddress)
    {
    }

    /// <summary>The forwarder process's CPU time so far.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            Process.Refresh();
            return Process.TotalProcessorTime;
        }
    }

    /// <summary>Starts this program in forwarder mode, with the garbage collector Opsgate runs with, and waits until it answers.</summary>
    public static async Task<BareForwarder> StartAsync(Uri upstream, HttpClient http, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("opsgate-bench-forwarder-").FullName;
        var port = ChildProcess.FreeLoopbackPort();
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true, WorkingDirectory = dir };
        foreach (var arg in new[] { typeof(BareForwarder).Assembly.Location, Command, port.ToString(CultureInfo.InvariantCulture), upstream.ToString() })
            start.ArgumentList.Add(arg);
        // Opsgate's collector (workstation, no background GC: see its csproj), so that only the work differs.
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_gcConcurrent"] = "0";
        var process = Process.Start(start) ?? throw new BenchException("could not start the bare forwarder");
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                Console.Error.WriteLine($"[forwarder] {e.Data}");
        };
        process.BeginErrorReadLine();
        var forwarder = new BareForwarder(process, dir, new Uri($"http://127.0.0.1:{port}/"));
        try
        {
            var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
            while (true)
            {
                if (process.HasExited)
                    throw new BenchException($"the bare forwarder exited with code {process.ExitCode} before it was ready");
                try
                {
                    using var response = await http.GetAsync(new Uri(forwarder.BaseAddress, "ready"), ct);
                    if (response.StatusCode == HttpStatusCode.OK)
                        return forwarder;
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                if (Stopwatch.GetTimestamp() > deadline)
                    throw new BenchException("the bare forwarder did not answer within 30 s");
                await Task.Delay(100, ct);
            }
        }
        catch
        {
            await forwarder.DisposeAsync();
            throw;
        }
    }

    /// <summary>The forwarder itself (this process was started with <see cref="Command"/>): serves until killed.</summary>
    public static async Task<int> ServeAsync(string[] args)
    {
        if (args.Length != 3 || !int.TryParse(args[1], CultureInfo.InvariantCulture, out var port) || !Uri.TryCreate(args[2], UriKind.Absolute, out var upstream))
        {
            Console.Error.WriteLine($"usage: opsgate-bench {Command} PORT UPSTREAM");
            return 2;
        }
        var target = new Uri(upstream, $"apis/apps/v1/namespaces/{KubeSimProcess.Namespace}/deployments/{KubeSimProcess.Deployment}/scale");
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, UseCookies = false, AllowAutoRedirect = false });
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/ready", () => "ok");
        app.MapPost("/scale", async (HttpRequest request, CancellationToken ct) =>
        {
            using var body = await JsonDocument.ParseAsync(request.Body, cancellationToken: ct);
            var replicas = body.RootElement.GetProperty("replicas").GetInt32();
            var patch = Encoding.UTF8.GetBytes("{\"spec\":{\"replicas\":" + replicas.ToString(CultureInfo.InvariantCulture) + "}}");
            using var message = new HttpRequestMessage(HttpMethod.Patch, target) { Content = new ByteArrayContent(patch) { Headers = { ContentType = MergePatch } } };
            using var response = await http.SendAsync(message, ct);
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            using var answer = await JsonDocument.ParseAsync(stream, cancellationToken: ct);
            if (!response.IsSuccessStatusCode)
                return Results.StatusCode((int)response.StatusCode);
            var now = answer.RootElement.GetProperty("spec").GetProperty("replicas").GetInt32();
            return Results.Text("{\"status\":\"ok\",\"replicas\":" + now.ToString(CultureInfo.InvariantCulture) + "}", "application/json");
        });
        await app.RunAsync();
        return 0;
    }
}
