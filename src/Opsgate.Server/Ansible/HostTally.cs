using System.Text.Json.Nodes;

namespace Opsgate.Server.Ansible;

/// <summary>One host's figures in a run: the PLAY RECAP columns and what failed, with ansible's messages.</summary>
internal sealed class HostResult
{
    public const int MaxFailures = 100;

    public int Ok { get; set; }
    public int Changed { get; set; }
    public int Failed { get; set; }
    public int Skipped { get; set; }
    public int Unreachable { get; set; }
    public int Rescued { get; set; }
    public int Ignored { get; set; }
    public List<JsonObject> Failures { get; } = [];
}

/// <summary>
/// Per-host results of one run, from the callback's events. The <c>stats</c> event (ansible's own PLAY RECAP figures)
/// replaces the counts taken from the per-task events, so the result equals what ansible-playbook prints; a run that
/// never got to its stats (cancelled, killed) keeps the counted figures and is marked partial.
/// </summary>
internal sealed class HostTally
{
    private readonly SortedDictionary<string, HostResult> _hosts = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, HostResult> Hosts => _hosts;

    /// <summary>True once ansible's stats arrived.</summary>
    public bool Complete { get; private set; }

    public void Add(string kind, JsonObject e)
    {
        if (kind == "stats")
        {
            ApplyStats(e["hosts"] as JsonObject);
            return;
        }
        if (e["host"]?.GetValue<string>() is not { } name)
            return;
        if (kind is "runner_ok" or "runner_skipped")
        {
            Count(kind, name, e["changed"]?.GetValue<bool>() == true);
            return;
        }
        var ignored = Flag(e, "ignored");
        var rescued = Flag(e, "rescued");
        var host = Host(name);
        switch (kind)
        {
            // As ansible counts them until its stats: an ignored failure is ok and ignored, a rescued one rescued.
            case "runner_failed":
                if (ignored)
                {
                    host.Ok++;
                    host.Ignored++;
                }
                else if (rescued)
                    host.Rescued++;
                else
                    host.Failed++;
                Failure(host, "failed", e, ignored, rescued);
                break;
            case "item_failed":
                Failure(host, "item_failed", e, ignored, rescued);
                break;
            case "runner_unreachable":
                if (ignored)
                {
                    host.Ok++;
                    host.Ignored++;
                }
                else
                    host.Unreachable++;
                Failure(host, "unreachable", e, ignored, rescued: false);
                break;
        }
    }

    /// <summary>The per-task events that need no more than who and whether it changed.</summary>
    public void Count(string kind, string name, bool changed)
    {
        var host = Host(name);
        if (kind == "runner_ok")
        {
            host.Ok++;
            if (changed)
                host.Changed++;
        }
        else if (kind == "runner_skipped")
            host.Skipped++;
    }

    private HostResult Host(string name)
    {
        if (!_hosts.TryGetValue(name, out var host))
            _hosts[name] = host = new HostResult();
        return host;
    }

    /// <summary>
    /// A failure entry. <c>ignored</c>: ignore_errors (or ignore_unreachable) let the host go on; <c>rescued</c>: a
    /// block's rescue section took it over. Either way ansible does not count the host as failed (or unreachable).
    /// </summary>
    private static void Failure(HostResult host, string kind, JsonObject e, bool ignored, bool rescued)
    {
        if (host.Failures.Count >= HostResult.MaxFailures)
            return;
        var failure = new JsonObject
        {
            ["kind"] = kind, ["task"] = e["task"]?.DeepClone(), ["message"] = e["message"]?.DeepClone(), ["ignored"] = ignored,
        };
        if (kind != "unreachable")
            failure["rescued"] = rescued;
        if (e["item"] is { } item)
            failure["item"] = item.DeepClone();
        if (e["rc"] is { } rc)
            failure["rc"] = rc.DeepClone();
        host.Failures.Add(failure);
    }

    private void ApplyStats(JsonObject? hosts)
    {
        if (hosts is null)
            return;
        Complete = true;
        foreach (var (name, node) in hosts)
        {
            if (node is not JsonObject s)
                continue;
            var host = Host(name);
            host.Ok = Int(s, "ok");
            host.Changed = Int(s, "changed");
            host.Failed = Int(s, "failures");
            host.Skipped = Int(s, "skipped");
            host.Unreachable = Int(s, "unreachable");
            host.Rescued = Int(s, "rescued");
            host.Ignored = Int(s, "ignored");
        }
    }

    private static int Int(JsonObject o, string key) => o[key]?.GetValue<int>() ?? 0;

    private static bool Flag(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
}
