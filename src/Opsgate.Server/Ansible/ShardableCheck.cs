using Opsgate.Server.Projects;
using Opsgate.Server.Yaml;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Ansible;

/// <summary>
/// Whether a playbook may be sharded: a shard runs the playbook on part of the hosts, so anything ansible does once per
/// play, or decides from all of a play's hosts together, would happen once per shard or be decided per shard. Refused:
/// <c>serial</c> (batches cut per shard), <c>run_once</c>, the <c>add_host</c> and <c>pause</c> modules (ansible
/// runs them once per play, like run_once), <c>any_errors_fatal</c> and <c>max_fail_percentage</c> (they stop hosts
/// in other shards), host patterns with a subscript (<c>web[0]</c> picks another host in every shard), meta tasks
/// ansible runs once with a condition (the condition is evaluated for one host of each shard), <c>meta:
/// clear_host_errors</c> (it clears the errors of every host in the play, also those of other shards), and plays marked
/// by their author with <c>vars: {opsgate_shardable: false}</c> (cross-host facts, delegate_to another shard's host).
/// <para>
/// Also refused: a play that may run hosts an earlier play does not (see <see cref="Covers"/>). ansible ends the whole
/// run after a play in which every host failed, and a shard decides that over its own hosts: one whose hosts all
/// failed in the first play would end before a later play reaches its other hosts, while one run goes on.
/// </para>
/// <para>
/// The playbook is read with what it imports and includes, as far as that can be resolved without running it:
/// <c>import_playbook</c>, <c>import_tasks</c>/<c>include_tasks</c> with a literal file, and roles by a literal name
/// (<c>roles:</c>, <c>import_role</c>/<c>include_role</c>, role dependencies) found in a <c>roles/</c> directory next to
/// the playbook or at the root. Names with <c>{{ }}</c>, roles from collections or from ansible's roles path, and files
/// outside the root are not read: what they hold is the author's to mark.
/// </para>
/// </summary>
internal sealed class ShardableCheck
{
    /// <summary>Deeper than any playbook nests; past it the file is left to ansible to read.</summary>
    private const int MaxDepth = 64;

    /// <summary>Files read at most, so a playbook that includes itself in circles (or very many files) ends the check.</summary>
    private const int MaxFiles = 500;

    private static readonly HashSet<string> OncePerPlayModules = ["add_host", "pause"];

    /// <summary>The meta actions the linear strategy runs once for all hosts, with a condition evaluated for the first.</summary>
    private static readonly HashSet<string> OnceMetaActions = ["end_play", "clear_facts", "refresh_inventory", "end_batch"];

    private readonly string? _root;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>The plays in the order ansible runs them, imports followed.</summary>
    private readonly List<PlayHosts> _plays = [];

    /// <summary>A play's host pattern as written (null: unknown, an import not read); OwnVars: it sets play vars, which a templated pattern may use.</summary>
    private sealed record PlayHosts(string Name, string? Pattern, bool OwnVars);

    private ShardableCheck(string? root) => _root = root is null ? null : Path.GetFullPath(root);

    /// <summary>
    /// Why the playbook must not be sharded, or null. <paramref name="path"/> is where the playbook is (null for inline
    /// YAML: then only the text itself is read); files it names are read only inside <paramref name="root"/>.
    /// </summary>
    public static string? Refusal(string playbookYaml, string? path = null, string? root = null)
    {
        var check = new ShardableCheck(path is null ? null : root ?? Path.GetDirectoryName(path));
        if (path is not null)
            check._read.Add(Path.GetFullPath(path));
        return check.Playbook(playbookYaml, path is null ? null : Path.GetDirectoryName(Path.GetFullPath(path))) ?? check.PlaysApart();
    }

    /// <summary>The first play that may run a host an earlier play does not, or null.</summary>
    private string? PlaysApart()
    {
        for (var later = 1; later < _plays.Count; later++)
        {
            for (var earlier = 0; earlier < later; earlier++)
            {
                var (p, q) = (_plays[earlier], _plays[later]);
                if (!Covers(p, q))
                    return $"{q.Name} (hosts: {q.Pattern ?? "unknown"}) may run hosts that the earlier {p.Name} (hosts: {p.Pattern ?? "unknown"}) does not: "
                           + "ansible ends a run after a play in which every host failed, and each shard would decide that over its own hosts, "
                           + "so a shard could stop before a play that one run goes on to";
            }
        }
        return null;
    }

    /// <summary>
    /// Whether every host play <paramref name="q"/> runs is surely one that the earlier play <paramref name="p"/> ran:
    /// the same pattern (templated only when neither play sets vars the template may read), or <paramref name="p"/>
    /// runs <c>all</c> the inventory's hosts and <paramref name="q"/> names no host ansible adds outside it (localhost).
    /// Anything else may differ: refused, without evaluating patterns against the inventory.
    /// </summary>
    private static bool Covers(PlayHosts p, PlayHosts q)
    {
        if (p.Pattern is null || q.Pattern is null)
            return false;
        var templated = q.Pattern.Contains("{{", StringComparison.Ordinal);
        if (p.Pattern == q.Pattern)
            return !templated || !(p.OwnVars || q.OwnVars);
        return p.Pattern is "all" or "*" && !templated
            && !q.Pattern.Contains("localhost", StringComparison.OrdinalIgnoreCase)
            && !q.Pattern.Contains("127.0.0.1", StringComparison.Ordinal) && !q.Pattern.Contains("::1", StringComparison.Ordinal);
    }

    private string? Playbook(string yaml, string? dir)
    {
        if (Load(yaml) is not YamlSequenceNode plays)
            return null;
        foreach (var play in plays.OfType<YamlMappingNode>())
        {
            if ((Text(play, "import_playbook") ?? Text(play, "ansible.builtin.import_playbook")) is { } imported)
            {
                if (Read(dir, imported) is not { } file)
                    _plays.Add(new PlayHosts($"playbook imported from '{imported}'", null, false));
                else if (Playbook(file.Yaml, Path.GetDirectoryName(file.Path)) is { } inner)
                    return inner;
                continue;
            }
            if (Play(play, dir) is { } why)
                return why;
        }
        return null;
    }

    private string? Play(YamlMappingNode play, string? dir)
    {
        var name = $"play '{Text(play, "name") ?? Text(play, "hosts") ?? "(unnamed)"}'";
        _plays.Add(new PlayHosts(name, HostsPattern(play)?.Trim(), Has(play, "vars") || Has(play, "vars_files") || Has(play, "vars_prompt")));
        if (Has(play, "serial"))
            return $"{name} sets serial (its batches would be cut per shard)";
        if (Has(play, "max_fail_percentage"))
            return $"{name} sets max_fail_percentage (the share of failed hosts would be counted per shard)";
        if (IsTrue(play, "any_errors_fatal"))
            return $"{name} sets any_errors_fatal (a failure would not stop the hosts of other shards)";
        if (play.Children.TryGetValue(new YamlScalarNode("vars"), out var vars) && vars is YamlMappingNode v && IsFalse(Text(v, "opsgate_shardable")))
            return $"{name} is marked opsgate_shardable: false";
        if (HostsPattern(play) is { } hosts && hosts.Contains('[', StringComparison.Ordinal) && !hosts.Contains("{{", StringComparison.Ordinal))
            return $"{name} picks hosts by position ('{hosts}': each shard would pick its own)";
        if (IsTrue(play, "run_once"))
            return $"{name} sets run_once (it would run once per shard)";
        foreach (var section in new[] { "pre_tasks", "tasks", "post_tasks", "handlers" })
        {
            if (play.Children.TryGetValue(new YamlScalarNode(section), out var tasks) && Tasks(tasks, dir, 0) is { } why)
                return why;
        }
        if (play.Children.TryGetValue(new YamlScalarNode("roles"), out var roles) && roles is YamlSequenceNode list)
        {
            foreach (var role in list)
            {
                var roleName = role is YamlScalarNode s ? s.Value : role is YamlMappingNode m ? Text(m, "role") ?? Text(m, "name") : null;
                if (role is YamlMappingNode options && (IsTrue(options, "any_errors_fatal") || IsTrue(options, "run_once")))
                    return $"role '{roleName}' in {name} sets {(IsTrue(options, "run_once") ? "run_once" : "any_errors_fatal")}";
                if (roleName is not null && Role(roleName, null, dir, 0) is { } why)
                    return why;
            }
        }
        return null;
    }

    private static string? HostsPattern(YamlMappingNode play) =>
        play.Children.TryGetValue(new YamlScalarNode("hosts"), out var hosts) ? hosts switch
        {
            YamlScalarNode s => s.Value,
            YamlSequenceNode list => string.Join(",", list.OfType<YamlScalarNode>().Select(h => h.Value)),
            _ => null,
        } : null;

    private string? Tasks(YamlNode? node, string? dir, int depth)
    {
        if (node is not YamlSequenceNode tasks || depth > MaxDepth)
            return null;
        foreach (var task in tasks.OfType<YamlMappingNode>())
        {
            if (Task(task, dir, depth) is { } why)
                return why;
        }
        return null;
    }

    private string? Task(YamlMappingNode task, string? dir, int depth)
    {
        var name = Text(task, "name") is { } n ? $"task '{n}'" : "a task";
        if (IsTrue(task, "run_once"))
            return $"{name} uses run_once (it would run once per shard)";
        if (IsTrue(task, "any_errors_fatal"))
            return $"{name} sets any_errors_fatal (a failure would not stop the hosts of other shards)";
        foreach (var section in new[] { "block", "rescue", "always" })
        {
            if (task.Children.TryGetValue(new YamlScalarNode(section), out var inner) && Tasks(inner, dir, depth + 1) is { } why)
                return why;
        }
        foreach (var (keyNode, value) in task.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
                continue;
            var module = Module(key);
            if (OncePerPlayModules.Contains(module))
                return $"{name} uses {module} (ansible runs it once per play; it would run once per shard)";
            if (module == "meta" && value is YamlScalarNode { Value: "clear_host_errors" })
                return $"{name} runs meta: clear_host_errors (it clears the errors of every host in the play, also those of other shards)";
            if (module == "meta" && value is YamlScalarNode { Value: { } action } && OnceMetaActions.Contains(action) && Has(task, "when"))
                return $"{name} runs meta: {action} with a condition (ansible evaluates it for one host, which differs per shard)";
            if (module is "include_tasks" or "import_tasks")
            {
                var file = value is YamlScalarNode s ? s.Value : value is YamlMappingNode m ? Text(m, "file") : null;
                if (Read(dir, file) is { } included && Tasks(Load(included.Yaml), Path.GetDirectoryName(included.Path), depth + 1) is { } why)
                    return why;
            }
            if (module is "include_role" or "import_role" && value is YamlMappingNode role && Text(role, "name") is { } roleName
                && Role(roleName, Text(role, "tasks_from"), dir, depth + 1) is { } roleWhy)
                return roleWhy;
        }
        return null;
    }

    /// <summary>A role's tasks (main, or <paramref name="tasksFrom"/>), handlers and dependencies.</summary>
    private string? Role(string name, string? tasksFrom, string? dir, int depth)
    {
        if (_root is null || depth > MaxDepth || name.Contains("{{", StringComparison.Ordinal) || name.Contains('/') || name.Contains('.'))
            return null;
        var roleDir = new[] { dir, _root }.Where(d => d is not null).Select(d => Path.Combine(d!, "roles", name)).FirstOrDefault(Directory.Exists);
        if (roleDir is null)
            return null;
        foreach (var (section, file) in new[] { ("tasks", tasksFrom ?? "main"), ("handlers", "main") })
        {
            foreach (var candidate in new[] { file, file + ".yml", file + ".yaml" })
            {
                if (Read(Path.Combine(roleDir, section), candidate) is { } found)
                {
                    if (Tasks(Load(found.Yaml), Path.GetDirectoryName(found.Path), depth + 1) is { } why)
                        return $"{why} (in role '{name}')";
                    break;
                }
            }
        }
        foreach (var candidate in new[] { "main.yml", "main.yaml" })
        {
            if (Read(Path.Combine(roleDir, "meta"), candidate) is { } meta)
            {
                if (Load(meta.Yaml) is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode("dependencies"), out var deps) && deps is YamlSequenceNode list)
                {
                    foreach (var dep in list)
                    {
                        var depName = dep is YamlScalarNode s ? s.Value : dep is YamlMappingNode d ? Text(d, "role") ?? Text(d, "name") : null;
                        if (depName is not null && Role(depName, null, dir, depth + 1) is { } why)
                            return why;
                    }
                }
                break;
            }
        }
        return null;
    }

    /// <summary>A file named in the playbook, read once, only when its name is literal and it is inside the root.</summary>
    private (string Path, string Yaml)? Read(string? dir, string? file)
    {
        if (_root is null || dir is null || string.IsNullOrWhiteSpace(file) || file.Contains("{{", StringComparison.Ordinal) || _read.Count >= MaxFiles)
            return null;
        var full = Path.GetFullPath(Path.Combine(dir, file));
        var relative = Path.GetRelativePath(_root, full);
        if (relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative)
            || ProjectPaths.Resolve(_root, relative, directoryAllowed: false, out var real) != PathProblem.None || !_read.Add(real))
            return null;
        try
        {
            return (real, File.ReadAllText(real));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static YamlNode? Load(string yaml)
    {
        try
        {
            var stream = SafeYaml.Load(yaml, MaxDepth);
            return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        }
        catch (SafeYamlException)
        {
            return null; // ansible reports what it cannot read
        }
    }

    /// <summary><c>ansible.builtin.pause</c> and <c>ansible.legacy.pause</c> are <c>pause</c>.</summary>
    private static string Module(string key) =>
        key.StartsWith("ansible.builtin.", StringComparison.Ordinal) ? key["ansible.builtin.".Length..]
        : key.StartsWith("ansible.legacy.", StringComparison.Ordinal) ? key["ansible.legacy.".Length..]
        : key;

    private static bool Has(YamlMappingNode map, string key) => map.Children.ContainsKey(new YamlScalarNode(key));

    private static string? Text(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode s ? s.Value : null;

    /// <summary>Set and not literally false: a templated value may be true, so it counts.</summary>
    private static bool IsTrue(YamlMappingNode map, string key) => Has(map, key) && !IsFalse(Text(map, key) ?? "true");

    private static bool IsFalse(string? value) => value is "false" or "False" or "FALSE" or "no" or "No" or "NO" or "0" or "off" or "Off";
}
