using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>One SSE event as a test sees it.</summary>
public sealed record SseEvent(long Id, string Type, JsonElement Data)
{
    /// <summary>The event's own data (the <c>data</c> member of the event JSON).</summary>
    public JsonElement Body => Data.GetProperty("data");

    public string? Str(string name) => Body.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>What the Ansible tests share: a server with a playbook directory, inventories of local hosts, SSE reading, PLAY RECAP parsing.</summary>
public static partial class AnsibleFixture
{
    public const string LocalVars = "ansible_connection: local, ansible_python_interpreter: /usr/bin/python3";

    public static Task<OpsgateServer> StartAsync(Provider provider, TempDir playbooks, params (string File, string Yaml)[] files) =>
        StartAsync(provider, playbooks, [], files);

    /// <summary>As above, with more server arguments (a runbook directory, ...).</summary>
    public static async Task<OpsgateServer> StartAsync(Provider provider, TempDir playbooks, string[] args, params (string File, string Yaml)[] files)
    {
        foreach (var (file, yaml) in files)
            await File.WriteAllTextAsync(Path.Combine(playbooks.Path, file), yaml);
        return await OpsgateServer.StartAsync(provider,
            [$"--Ansible:PlaybookDirectory={playbooks.Path}", "--Ansible:InterruptGrace=00:00:03", "--Ansible:TerminateGrace=00:00:02", .. args]);
    }

    /// <summary>Stores <paramref name="hosts"/> as an inventory through the API, as a user would, and returns its name for a job's <c>inventory</c>.</summary>
    public static async Task<string> StoreInventoryAsync(HttpClient client, string hosts, string? name = null, object? vars = null)
    {
        name ??= "inv-" + Guid.NewGuid().ToString("N")[..8];
        var response = await client.PostAsJsonAsync("/api/v1/inventories", new { name, hosts, vars }, OpsgateServer.Json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"storing inventory {name}: {(int)response.StatusCode} {body}");
        return name;
    }

    /// <summary>An inventory of <paramref name="names"/> on the local connection, plus any extra host lines (YAML, indented under hosts).</summary>
    public static string Inventory(IEnumerable<string> names, params string[] extraHosts)
    {
        var text = new StringBuilder("all:\n  vars: {" + LocalVars + "}\n  hosts:\n");
        foreach (var name in names)
            text.Append("    ").Append(name).Append(":\n");
        foreach (var extra in extraHosts)
            text.Append("    ").Append(extra).Append('\n');
        return text.ToString();
    }

    /// <summary>A loopback port nothing listens on: ssh gets "connection refused" at once.</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Reads the job's SSE stream; <paramref name="until"/> may stop it early (default: the end of the stream, after job.finished).</summary>
    public static async Task<List<SseEvent>> ReadEventsAsync(HttpClient client, string jobId, Func<SseEvent, bool>? until = null, long? after = null, TimeSpan? timeout = null)
    {
        var url = $"/api/v1/jobs/{jobId}/events" + (after is { } a ? $"?after={a}" : "");
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var events = new List<SseEvent>();
        long id = 0;
        var type = "";
        while (await reader.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
                id = long.Parse(line[4..], CultureInfo.InvariantCulture);
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
                type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var e = new SseEvent(id, type, JsonDocument.Parse(line[6..]).RootElement.Clone());
                events.Add(e);
                if (until?.Invoke(e) == true)
                    break;
            }
        }
        return events;
    }

    public sealed record Recap(int Ok, int Changed, int Unreachable, int Failed, int Skipped, int Rescued, int Ignored);

    /// <summary>The PLAY RECAP that ansible-playbook itself printed, from the job's <c>ansible.output</c> events.</summary>
    public static Dictionary<string, Recap> RecapFromOutput(IEnumerable<SseEvent> events)
    {
        var stdout = string.Concat(events.Where(e => e.Type == "ansible.output" && e.Str("stream") == "stdout").Select(e => e.Str("text")));
        return RecapFromText(stdout);
    }

    /// <summary>The PLAY RECAP in ansible-playbook's standard output.</summary>
    public static Dictionary<string, Recap> RecapFromText(string stdout)
    {
        var at = stdout.IndexOf("PLAY RECAP", StringComparison.Ordinal);
        Assert.True(at >= 0, "no PLAY RECAP in ansible's output:\n" + stdout);
        var recap = new Dictionary<string, Recap>(StringComparer.Ordinal);
        foreach (Match m in RecapLine().Matches(stdout[at..]))
        {
            int N(int g) => int.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);
            recap[m.Groups[1].Value] = new Recap(N(2), N(3), N(4), N(5), N(6), N(7), N(8));
        }
        return recap;
    }

    public static Recap FromApi(JsonElement stats) => new(
        stats.GetProperty("ok").GetInt32(), stats.GetProperty("changed").GetInt32(), stats.GetProperty("unreachable").GetInt32(),
        stats.GetProperty("failed").GetInt32(), stats.GetProperty("skipped").GetInt32(), stats.GetProperty("rescued").GetInt32(),
        stats.GetProperty("ignored").GetInt32());

    [GeneratedRegex(@"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", RegexOptions.Multiline)]
    private static partial Regex RecapLine();

    /// <summary>Pids of live processes whose command line contains <paramref name="marker"/>.</summary>
    public static IReadOnlyList<int> ProcessesWith(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(marker, StringComparison.Ordinal))
                    found.Add(pid);
            }
            catch (IOException)
            {
                // Gone meanwhile.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours.
            }
        }
        return found;
    }

    /// <summary>Live processes in process group <paramref name="pgid"/> (field 5 of /proc/PID/stat).</summary>
    public static IReadOnlyList<int> ProcessGroup(int pgid)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // After "pid (comm) ": state ppid pgrp ...; a zombie (Z) has exited.
                if (fields[0] != "Z" && int.Parse(fields[2], CultureInfo.InvariantCulture) == pgid)
                    found.Add(pid);
            }
            catch (IOException)
            {
                // Gone meanwhile.
            }
        }
        return found;
    }
}
