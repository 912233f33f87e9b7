using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;
using Opsgate.Server.Kubernetes;
using Opsgate.Server.Tests.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Hosting;

/// <summary>
/// The reference pages keep up with the code: every configuration key the server binds is in docs/configuration.md,
/// and every registered step kind, with exactly its inputs, is in the step-kind reference, docs/step-kinds.md.
/// Both lists come from the host as Opsgate builds it, so a new option or step kind fails here until it is documented.
/// </summary>
public sealed partial class DocsCoverageTests
{
    private const string ConfigurationPage = "configuration.md";
    private const string StepKindPage = "step-kinds.md";

    [Fact]
    public async Task Every_configuration_key_the_server_binds_is_on_the_configuration_page()
    {
        var inCode = await BoundKeysAsync();
        // Sanity: the walk found the options classes (a key of each kind of binding: root, section, nested, dictionary).
        Assert.Contains("DataDir", inCode);
        Assert.Contains("Jobs:Workers", inCode);
        Assert.Contains("Auth:Oidc:Authority", inCode);
        Assert.Contains("Notifications:Webhooks:<>:Url", inCode);

        var documented = DocumentedKeys(await ReadDocAsync(ConfigurationPage));
        var missing = inCode.Where(k => !documented.Contains(k)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"configuration keys bound in code but missing from docs/{ConfigurationPage}: {string.Join(", ", missing)}");
    }

    [Fact]
    public async Task Every_step_kind_and_its_inputs_are_in_the_step_kind_reference()
    {
        using var dir = new TempDir();
        await using var app = OpsgateHost.Build(["--urls=http://127.0.0.1:0", $"--DataDir={dir.Path}"]);
        var inCode = app.Services.GetServices<IStepExecutor>()
            .ToDictionary(e => e.Kind, e => e.Inputs.Select(i => i.Name).Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        Assert.Contains("ansible.run", inCode.Keys);

        var documented = DocumentedStepKinds(await ReadDocAsync(StepKindPage));
        Assert.True(inCode.Keys.Order(StringComparer.Ordinal).SequenceEqual(documented.Keys.Order(StringComparer.Ordinal)),
            $"step kinds in code: {string.Join(", ", inCode.Keys.Order(StringComparer.Ordinal))}; in docs/{StepKindPage}: {string.Join(", ", documented.Keys.Order(StringComparer.Ordinal))}");
        foreach (var (kind, inputs) in inCode)
            Assert.True(inputs.SequenceEqual(documented[kind].Order(StringComparer.Ordinal)),
                $"{kind}: inputs in code {string.Join(", ", inputs)}; in docs/{StepKindPage}: {string.Join(", ", documented[kind].Order(StringComparer.Ordinal))}");
    }

    /// <summary>
    /// Every key of every Opsgate options class registered with the host, as <c>Section:Property</c> (nested classes
    /// extend the path, a dictionary's key is <c>&lt;&gt;</c>). The section is where the binder reads: the first thing
    /// it asks the configuration for when it binds the class, caught by a provider that records reads.
    /// </summary>
    private static async Task<HashSet<string>> BoundKeysAsync()
    {
        using var dir = new TempDir();
        IServiceCollection? services = null;
        await using var app = OpsgateHost.Build(["--urls=http://127.0.0.1:0", $"--DataDir={dir.Path}"], s => services = s);
        var recorder = new ReadRecorder();
        var builder = Assert.IsAssignableFrom<IConfigurationBuilder>(app.Configuration);
        builder.Add(recorder);

        var server = typeof(OpsgateHost).Assembly;
        var optionTypes = services!
            .Where(d => d.ServiceType.IsGenericType && d.ServiceType.GetGenericTypeDefinition() == typeof(IConfigureOptions<>))
            .Select(d => d.ServiceType.GetGenericArguments()[0])
            .Where(t => t.Assembly == server)
            .Distinct()
            .ToList();
        Assert.NotEmpty(optionTypes);

        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var type in optionTypes)
        {
            var configureType = typeof(IConfigureOptions<>).MakeGenericType(type);
            var instance = Activator.CreateInstance(type)!;
            recorder.Reads.Clear();
            foreach (var configure in app.Services.GetServices(configureType))
                configureType.GetMethod(nameof(IConfigureOptions<object>.Configure))!.Invoke(configure, [instance]);
            if (recorder.Reads.Count == 0)
                continue; // configured in code, not from configuration
            var section = recorder.Reads.MinBy(r => r.Length)!;
            AddKeys(keys, section, type);
        }
        // Clusters declared in configuration are read per cluster from Clusters:<name>, not through an options class.
        AddKeys(keys, "Clusters:<>", typeof(ClusterConfigEntry));
        return keys;
    }

    private static void AddKeys(HashSet<string> keys, string prefix, Type type)
    {
        foreach (var property in type.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (property.SetMethod is not { IsPublic: true })
                continue;
            var key = prefix.Length == 0 ? property.Name : $"{prefix}:{property.Name}";
            var propertyType = property.PropertyType;
            if (propertyType.IsGenericType && propertyType.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                var value = propertyType.GetGenericArguments()[1];
                if (IsLeaf(value))
                    keys.Add($"{key}:<>");
                else
                    AddKeys(keys, $"{key}:<>", value);
            }
            else if (IsLeaf(propertyType) || propertyType.IsAssignableTo(typeof(System.Collections.IEnumerable)))
                keys.Add(key);
            else
                AddKeys(keys, key, propertyType);
        }
    }

    private static bool IsLeaf(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
            || type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(Uri) || type == typeof(Guid);
    }

    /// <summary>The keys in the first column of the page's tables; a placeholder such as <c>&lt;name&gt;</c> becomes <c>&lt;&gt;</c>.</summary>
    private static HashSet<string> DocumentedKeys(string page) =>
        page.Split('\n')
            .Where(l => l.StartsWith("| `", StringComparison.Ordinal))
            .SelectMany(l => Code().Matches(l.Split('|')[1]).Select(m => Placeholder().Replace(m.Groups[1].Value, "<>")))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Each <c>## `kind`</c> heading of the page with the inputs in the first column of the table under it.</summary>
    private static Dictionary<string, List<string>> DocumentedStepKinds(string page)
    {
        var kinds = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        List<string>? current = null;
        foreach (var line in page.Split('\n'))
        {
            if (line.StartsWith('#'))
            {
                var heading = StepKindHeading().Match(line);
                current = heading.Success ? kinds[heading.Groups[1].Value] = [] : null;
            }
            else if (current is not null && line.StartsWith("| `", StringComparison.Ordinal))
                current.Add(Code().Match(line.Split('|')[1]).Groups[1].Value);
        }
        return kinds;
    }

    private static Task<string> ReadDocAsync(string name) =>
        File.ReadAllTextAsync(Path.Combine(OpenApiTests.RepositoryRoot(), "docs", name));

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Code();

    [GeneratedRegex("<[^>]*>")]
    private static partial Regex Placeholder();

    [GeneratedRegex(@"^## `([a-z0-9._-]+)`\s*$")]
    private static partial Regex StepKindHeading();

    /// <summary>A configuration provider that holds nothing and notes every path asked for (values and children).</summary>
    private sealed class ReadRecorder : ConfigurationProvider, IConfigurationSource
    {
        public List<string> Reads { get; } = [];

        public IConfigurationProvider Build(IConfigurationBuilder builder) => this;

        public override bool TryGet(string key, out string? value)
        {
            lock (Reads)
                Reads.Add(key);
            value = null;
            return false;
        }

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
        {
            lock (Reads)
                Reads.Add(parentPath ?? "");
            return earlierKeys;
        }
    }
}
