using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Ansible;

/// <summary>
/// An inventory as ansible sees it: <c>ansible-inventory --list --export</c> output (groups with their hosts,
/// children and vars; host vars under <c>_meta.hostvars</c>) and the hosts in the order ansible lists them.
/// </summary>
internal sealed record ExpandedInventory(IReadOnlyList<string> Hosts, JsonObject List);

/// <summary>The inventory could not be read by ansible; the message is ansible's own.</summary>
internal sealed class InventoryException(string message, bool serverSide = false) : Exception(message)
{
    /// <summary>Not the inventory's fault: ansible-inventory could not be started, or did not finish within Ansible:InventoryTimeout.</summary>
    public bool ServerSide { get; } = serverSide;
}

/// <summary>
/// Expands an inventory with <c>ansible-inventory</c> (the authority on host ranges, groups and children), without a
/// shell, with the same scrubbed environment as playbook runs (HOME, config and temp in a private directory) and only
/// the inventory plugins named. Stored YAML inventories are read with <c>yaml</c> alone; sources in a project with
/// <see cref="SourcePlugins"/>. <c>--export</c> keeps group vars on their groups instead of copying them into every host
/// (3 s instead of 13 s for 20,000 hosts on 2 cores), so the result can be written back as an inventory for a subset
/// of the hosts.
/// </summary>
internal sealed class InventoryExpander(IOptions<AnsibleOptions> options, PrivateDirectories directories)
{
    /// <summary>
    /// The plugins an inventory source in a project may use: files and scripts read or run on the server, and
    /// <c>constructed</c> (groups and vars from expressions over the hosts the other files gave). Not <c>auto</c>: it
    /// loads whatever plugin a file names, cloud ones included, which would take credentials from the server's host.
    /// </summary>
    public static readonly IReadOnlyList<string> SourcePlugins = ["script", "yaml", "ini", "constructed"];

    /// <summary>An Ansible YAML inventory given as text (written to a private file, read with the <c>yaml</c> plugin only).</summary>
    public async Task<ExpandedInventory> ExpandAsync(string inventoryYaml, CancellationToken ct)
    {
        var dir = directories.Create("invyaml"); // 0700
        try
        {
            var inventory = Path.Combine(dir.FullName, "inventory.yml");
            await File.WriteAllTextAsync(inventory, inventoryYaml, ct);
            return await ExpandAsync(dir.FullName, inventory, ["yaml"], "the inventory", ct);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The inventory source <paramref name="source"/> (a file, a directory of them, or an executable script, run with
    /// <c>--list</c>), with <paramref name="workingDirectory"/> as the current directory and only
    /// <paramref name="plugins"/> enabled; every source must parse (a broken script is an error, not fewer hosts).
    /// In ansible's messages <paramref name="workingDirectory"/> is left out and <paramref name="source"/> is called
    /// <paramref name="sourceName"/>.
    /// </summary>
    public async Task<ExpandedInventory> ExpandAsync(string workingDirectory, string source, IReadOnlyList<string> plugins, string sourceName, CancellationToken ct)
    {
        var o = options.Value;
        var dir = directories.Create("inventory"); // 0700
        try
        {
            var config = Path.Combine(dir.FullName, "ansible.cfg");
            await File.WriteAllTextAsync(config, "# written by Opsgate; settings come from the environment\n", ct);
            var psi = new ProcessStartInfo(o.InventoryCommand) { WorkingDirectory = workingDirectory };
            foreach (var arg in new[] { "--list", "--export", "--inventory=" + source })
                psi.ArgumentList.Add(arg);
            AnsibleProcess.ScrubEnvironment(psi.Environment, dir.FullName, config, dir.FullName);
            psi.Environment["ANSIBLE_INVENTORY_ENABLED"] = string.Join(',', plugins);
            psi.Environment["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "True";

            ChildProcessResult result;
            try
            {
                result = await ChildProcess.RunAsync(psi, o.InventoryTimeout, ct);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InventoryException($"ansible-inventory cannot be started: '{o.InventoryCommand}' (Ansible:InventoryCommand): {e.Message}", serverSide: true);
            }
            if (result.TimedOut)
                throw new InventoryException($"ansible-inventory did not finish within {o.InventoryTimeout} (Ansible:InventoryTimeout)", serverSide: true);
            if (result.ExitCode != 0)
                throw new InventoryException(AnsibleMessage(result.Stderr, source, sourceName, workingDirectory) ?? $"ansible-inventory failed with exit code {result.ExitCode}");
            var list = JsonNode.Parse(result.Stdout)?.AsObject() ?? throw new InventoryException("ansible-inventory printed no inventory");
            return new ExpandedInventory(HostsOf(list), list);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Every host once, depth first from <c>all</c> through children, in the order ansible lists them.</summary>
    internal static List<string> HostsOf(JsonObject list)
    {
        var hosts = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var visited = new HashSet<string>(StringComparer.Ordinal);
        void Visit(string group)
        {
            if (!visited.Add(group) || list[group] is not JsonObject node)
                return;
            foreach (var host in node["hosts"]?.AsArray() ?? [])
            {
                if (host?.GetValue<string>() is { } name && seen.Add(name))
                    hosts.Add(name);
            }
            foreach (var child in node["children"]?.AsArray() ?? [])
            {
                if (child?.GetValue<string>() is { } name)
                    Visit(name);
            }
        }
        Visit("all");
        return hosts;
    }

    /// <summary>ansible's message on one line (the parse error is in its warnings), with the source's private path replaced by its name.</summary>
    /// <summary><paramref name="text"/> as a pattern that also matches it cut by line breaks (and the indentation after them).</summary>
    private static Regex Wrapped(string text) =>
        new(string.Join(@"(?:\r?\n[ \t]*)?", text.Select(c => Regex.Escape(c.ToString()))), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    private static string? AnsibleMessage(string stderr, string source, string sourceName, string workingDirectory)
    {
        // ansible wraps its warnings at 80 columns and breaks long words, so a path may be cut by a line break:
        // the paths are replaced in the text as printed, across such breaks, before the lines are joined.
        var dir = Path.TrimEndingDirectorySeparator(workingDirectory) + Path.DirectorySeparatorChar;
        stderr = Wrapped(source).Replace(stderr, sourceName.Replace("$", "$$", StringComparison.Ordinal));
        stderr = Wrapped(dir).Replace(stderr, "");
        var text = string.Join(' ', stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (text.Length > 4000)
            text = text[..4000] + "...";
        return text.Length == 0 ? null : text;
    }
}
