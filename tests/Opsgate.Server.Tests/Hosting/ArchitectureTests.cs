using System.Reflection;
using System.Reflection.Emit;
using Xunit.Abstractions;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>
/// The server's features (its namespaces under <c>Opsgate.Server</c>) must not depend on each other in circles (a
/// cycle means neither can be understood, changed or tested alone), nor use each other's internals; the job engine
/// stays below the features built on it. Dependencies are read from the compiled assembly:
/// signatures, fields, constructor parameters (what DI injects) and every type, method and field the IL names. The
/// composition root (<c>Program</c>, <c>OpsgateHost</c>), which wires every feature, is left out.
/// </summary>
public sealed class ArchitectureTests(ITestOutputHelper output)
{
    private static readonly Assembly Server = typeof(Opsgate.Server.Hosting.OpsgateHost).Assembly;

    private static readonly HashSet<string> CompositionRoot = ["Opsgate.Server.Program", "Opsgate.Server.Hosting.OpsgateHost"];

    /// <summary>
    /// What the job engine may use: the foundations every feature stands on. The features built on the engine (its
    /// routes in Jobs, the step kinds in Kubernetes and Ansible, projects, the UI) plug into it through its interfaces
    /// (<c>IStepExecutor</c>, <c>IClusterAllowlists</c>), so it knows none of them, nor HTTP.
    /// </summary>
    private static readonly HashSet<string> EngineMayUse = ["Access", "Audit", "Hosting", "Observability", "Persistence", "Secrets", "Yaml"];

    /// <summary>
    /// A feature's face is its root namespace plus the sub-namespaces listed here; its other sub-namespaces
    /// (<c>Persistence.Sqlite</c>, <c>Engine.Notifications</c>, <c>Ansible.Inventories</c>...) are its internals.
    /// </summary>
    private static readonly HashSet<string> Published =
    [
        "Opsgate.Server.Engine.Steps", // the step-kind contract other features implement
        "Opsgate.Server.Engine.Runbooks", // runbooks and their templates, which step kinds and the job routes read
    ];

    [Fact]
    public void Features_do_not_depend_on_each_other_in_circles()
    {
        var edges = Dependencies();
        var cycles = StronglyConnected(edges).Where(c => c.Count > 1).Select(c => string.Join(" ", c.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal).ToList();
        foreach (var cycle in cycles)
        {
            var members = cycle.Split(' ').ToHashSet(StringComparer.Ordinal);
            output.WriteLine($"cycle: {cycle}");
            foreach (var (from, tos) in edges.Where(e => members.Contains(e.Key)))
            {
                foreach (var (to, why) in tos.Where(t => members.Contains(t.Key)))
                    output.WriteLine($"  {from} -> {to}: {why}");
            }
        }
        Assert.Empty(cycles);
    }

    [Fact]
    public void The_engine_knows_no_http_and_none_of_the_features_built_on_it()
    {
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var type in Server.GetTypes().Where(t => Feature(Outermost(t)) == "Engine"))
        {
            foreach (var used in Used(type))
            {
                if (used.Namespace?.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) == true)
                    found.Add($"{Outermost(type).FullName} uses {used.FullName} (HTTP)");
                else if (Feature(Outermost(used)) is { } feature && feature != "Engine" && !EngineMayUse.Contains(feature))
                    found.Add($"{Outermost(type).FullName} uses {Outermost(used).FullName}");
            }
        }
        Assert.Empty(found);
    }

    [Fact]
    public void No_feature_reaches_into_another_features_internals()
    {
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var type in Server.GetTypes())
        {
            var outer = Outermost(type);
            if (CompositionRoot.Contains(outer.FullName!) || Feature(outer) is not { } from)
                continue;
            foreach (var used in Used(type).Select(Outermost).Where(u => Feature(u) is { } to && to != from))
            {
                var ns = used.Namespace!;
                var root = "Opsgate.Server." + Feature(used);
                if (ns != root && !Published.Contains(ns))
                    found.Add($"{outer.FullName} uses {used.FullName}, internal to {Feature(used)}");
            }
        }
        foreach (var line in found)
            output.WriteLine(line);
        Assert.Empty(found);
    }

    /// <summary>
    /// SQLite and PostgreSQL differ only inside <c>Opsgate.Server.Persistence</c> (its <c>Sqlite</c> and <c>Postgres</c>
    /// namespaces, behind small interfaces): no other type names a database driver or branches on <c>DbDialect</c>.
    /// </summary>
    [Fact]
    public void Only_persistence_knows_the_database_dialects()
    {
        static bool IsDialect(Type used) =>
            used.Namespace is { } ns && (ns.StartsWith("Npgsql", StringComparison.Ordinal) || ns.StartsWith("Microsoft.Data.Sqlite", StringComparison.Ordinal) ||
                ns.StartsWith("SQLitePCL", StringComparison.Ordinal))
            || used.FullName == "Opsgate.Server.Persistence.DbDialect";
        var offenders = (
            from type in Server.GetTypes()
            let ns = Outermost(type).Namespace ?? ""
            where ns != "Opsgate.Server.Persistence" && !ns.StartsWith("Opsgate.Server.Persistence.", StringComparison.Ordinal)
            from used in Used(type).Concat(CalledSignatures(type))
            where IsDialect(used)
            select $"{Outermost(type).FullName} uses {used.FullName}").Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var offender in offenders)
            output.WriteLine(offender);
        Assert.Empty(offenders);

        // A comparison with an enum constant names no type in IL: DbDialect shows in the signature of what is called
        // (a Dialect property, a method taking one).
        static IEnumerable<Type> CalledSignatures(Type type)
        {
            foreach (var method in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
            {
                if (method.GetMethodBody()?.GetILAsByteArray() is not { } il)
                    continue;
                var typeArgs = type.IsGenericType ? type.GetGenericArguments() : null;
                var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
                for (var i = 0; i < il.Length;)
                {
                    short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
                    i += il[i] == 0xFE ? 2 : 1;
                    var op = OpCodesByValue[value];
                    if (op.OperandType == OperandType.InlineMethod)
                    {
                        MethodBase? called = null;
                        try
                        {
                            called = method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                        }
                        catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException)
                        {
                            // As in FromBody: nothing of ours.
                        }
                        if (called is MethodInfo m)
                            yield return m.ReturnType;
                        foreach (var p in called?.GetParameters() ?? [])
                            yield return p.ParameterType;
                    }
                    i += op.OperandType switch
                    {
                        OperandType.InlineNone => 0,
                        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                        OperandType.InlineVar => 2,
                        OperandType.InlineI8 or OperandType.InlineR => 8,
                        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                        _ => 4,
                    };
                }
            }
        }
    }

    /// <summary>Feature → feature it uses → one example (type → type), for the message.</summary>
    private static Dictionary<string, Dictionary<string, string>> Dependencies()
    {
        var edges = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var type in Server.GetTypes())
        {
            var outer = Outermost(type);
            if (CompositionRoot.Contains(outer.FullName!) || Feature(outer) is not { } from)
                continue;
            foreach (var used in Used(type))
            {
                if (Feature(Outermost(used)) is { } to && to != from && !CompositionRoot.Contains(Outermost(used).FullName!))
                {
                    var targets = edges.TryGetValue(from, out var t) ? t : edges[from] = new(StringComparer.Ordinal);
                    targets.TryAdd(to, $"{outer.Name} uses {Outermost(used).Name}");
                }
            }
        }
        return edges;
    }

    private static Type Outermost(Type type)
    {
        while (type.DeclaringType is { } declaring)
            type = declaring;
        return type;
    }

    /// <summary>The feature a type belongs to: the namespace part after <c>Opsgate.Server</c> (null for other assemblies' types).</summary>
    private static string? Feature(Type type) =>
        type.Assembly == Server && type.Namespace is { } ns && ns.StartsWith("Opsgate.Server.", StringComparison.Ordinal)
            ? ns["Opsgate.Server.".Length..].Split('.')[0]
            : null;

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static IEnumerable<Type> Used(Type type)
    {
        var found = new List<Type>();
        if (type.BaseType is { } b)
            found.Add(b);
        found.AddRange(type.GetInterfaces());
        found.AddRange(type.GetFields(All).Select(f => f.FieldType));
        found.AddRange(type.GetProperties(All).Select(p => p.PropertyType));
        foreach (var method in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            found.AddRange(method.GetParameters().Select(p => p.ParameterType));
            if (method is MethodInfo m)
                found.Add(m.ReturnType);
            found.AddRange(FromBody(method));
        }
        found.AddRange(type.GetCustomAttributesData().Select(a => a.AttributeType));
        return found.SelectMany(Expand).Distinct();
    }

    /// <summary>A type with its element and generic argument types (<c>List&lt;JobRow&gt;</c> uses JobRow).</summary>
    private static IEnumerable<Type> Expand(Type type)
    {
        if (type.HasElementType && type.GetElementType() is { } element)
        {
            foreach (var t in Expand(element))
                yield return t;
            yield break;
        }
        if (type.IsGenericParameter)
            yield break;
        yield return type.IsGenericType ? type.GetGenericTypeDefinition() : type;
        if (type.IsGenericType)
        {
            foreach (var t in type.GetGenericArguments().SelectMany(Expand))
                yield return t;
        }
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>The types the method's IL names: in calls, object creation, field access, casts, typeof.</summary>
    private static IEnumerable<Type> FromBody(MethodBase method)
    {
        if (method.GetMethodBody()?.GetILAsByteArray() is not { } il)
            yield break;
        var module = method.Module;
        var typeArgs = method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            var size = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok)
            {
                MemberInfo? member = null;
                try
                {
                    member = module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException)
                {
                    // A token that does not resolve in this context (a generic instantiation elsewhere): it names nothing of ours we would miss.
                }
                switch (member)
                {
                    case Type t:
                        yield return t;
                        break;
                    case MethodBase m when m.DeclaringType is { } d:
                        yield return d;
                        break;
                    case FieldInfo f when f.DeclaringType is { } d:
                        yield return d;
                        yield return f.FieldType;
                        break;
                }
            }
            i += size;
        }
    }

    /// <summary>Tarjan's strongly connected components.</summary>
    private static List<List<string>> StronglyConnected(Dictionary<string, Dictionary<string, string>> edges)
    {
        var nodes = edges.Keys.Concat(edges.Values.SelectMany(v => v.Keys)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<List<string>>();
        var next = 0;

        void Visit(string v)
        {
            index[v] = low[v] = next++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in edges.TryGetValue(v, out var targets) ? targets.Keys.ToList() : [])
            {
                if (!index.TryGetValue(w, out var seen))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], seen);
                }
            }
            if (low[v] != index[v])
                return;
            var component = new List<string>();
            string x;
            do
            {
                x = stack.Pop();
                onStack.Remove(x);
                component.Add(x);
            }
            while (x != v);
            result.Add(component);
        }

        foreach (var n in nodes.Where(n => !index.ContainsKey(n)))
            Visit(n);
        return result;
    }
}
