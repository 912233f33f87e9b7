using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Opsgate.Server.Access;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Hosting;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>
/// Reads a runbook and checks everything that can be checked without parameters: keys, names, types, durations,
/// step kinds and their inputs, and every template reference. A runbook that loads can only fail at submit time on
/// the values given for its parameters.
/// </summary>
internal static partial class RunbookLoader
{
    private const int MaxAttempts = 100;

    /// <exception cref="RunbookException">Names the source and the line of the problem.</exception>
    public static Runbook Load(string yaml, string source, IReadOnlyDictionary<string, IStepExecutor> executors)
    {
        var y = new RunbookYaml(source);
        var root = y.ParseDocument(yaml);
        var top = y.Fields(root, "the runbook", "name", "description", "parameters", "options", "steps");

        var nameNode = y.Required(top, root, "name", "a runbook");
        var name = y.Text(nameNode, "name");
        if (!Validate.IsDnsLabel(name))
            throw y.Error(nameNode, $"name '{name}' {Validate.DnsLabelRule}");
        var description = top.TryGetValue("description", out var d) ? OptionalText(y, d, "description") : null;

        var parameters = new List<RunbookParameter>();
        if (top.TryGetValue("parameters", out var parametersNode))
        {
            foreach (var item in Items(y, parametersNode, "parameters"))
            {
                var parameter = ReadParameter(y, item);
                if (parameters.Any(p => p.Name == parameter.Name))
                    throw y.Error(item, $"parameter '{parameter.Name}' is declared twice");
                parameters.Add(parameter);
            }
        }

        var options = top.TryGetValue("options", out var optionsNode) ? ReadOptions(y, optionsNode, parameters) : RunbookOptions.Default;

        var stepsNode = y.Required(top, root, "steps", "a runbook");
        var stepItems = Items(y, stepsNode, "steps");
        if (stepItems.Count == 0)
            throw y.Error(stepsNode, "steps must list at least one step");
        var allStepNames = AllStepNames(stepItems);
        var steps = new List<RunbookStep>();
        foreach (var item in stepItems)
            steps.Add(ReadStep(y, item, executors, parameters, steps, allStepNames));

        return new Runbook(name, description, parameters, steps, options, source);
    }

    private static RunbookParameter ReadParameter(RunbookYaml y, YamlNode node)
    {
        var f = y.Fields(node, "a parameter", "name", "type", "required", "default", "pattern", "min", "max", "values", "description", "secret");
        var name = Identifier(y, y.Required(f, node, "name", "a parameter"), "parameter name");
        var what = $"parameter '{name}'";
        var typeNode = y.Required(f, node, "type", what);
        var type = y.Text(typeNode, "type") switch
        {
            "string" => ParameterType.String,
            "int" => ParameterType.Int,
            "bool" => ParameterType.Bool,
            "enum" => ParameterType.Enum,
            "object" => ParameterType.Object,
            "any" => ParameterType.Any,
            var other => throw y.Error(typeNode, $"type of {what} must be string, int, bool, enum, object or any, not '{other}'"),
        };
        var required = f.TryGetValue("required", out var r) && y.Bool(r, "required");

        string? pattern = null;
        if (f.TryGetValue("pattern", out var patternNode))
        {
            OnlyFor(y, patternNode, type, ParameterType.String, "pattern", what);
            pattern = y.Text(patternNode, "pattern");
            if (ParameterBinder.InvalidPattern(pattern) is { } problem)
                throw y.Error(patternNode, $"{what}: {problem}");
        }

        long? min = null, max = null;
        if (f.TryGetValue("min", out var minNode))
        {
            OnlyFor(y, minNode, type, ParameterType.Int, "min", what);
            min = y.Integer(minNode, "min", long.MinValue, long.MaxValue);
        }
        if (f.TryGetValue("max", out var maxNode))
        {
            OnlyFor(y, maxNode, type, ParameterType.Int, "max", what);
            max = y.Integer(maxNode, "max", long.MinValue, long.MaxValue);
            if (max < min)
                throw y.Error(maxNode, $"max ({max}) of {what} is below its min ({min})");
        }

        List<string>? values = null;
        if (f.TryGetValue("values", out var valuesNode))
        {
            OnlyFor(y, valuesNode, type, ParameterType.Enum, "values", what);
            values = [];
            foreach (var item in Items(y, valuesNode, "values"))
            {
                var value = y.Text(item, "an enum value");
                if (values.Contains(value, StringComparer.Ordinal))
                    throw y.Error(item, $"{what} lists '{value}' twice");
                values.Add(value);
            }
        }
        if (type == ParameterType.Enum && values is not { Count: > 0 })
            throw y.Error(valuesNode ?? node, $"enum {what} needs values: a list of the allowed values");

        var description = f.TryGetValue("description", out var d) ? OptionalText(y, d, "description") : null;
        var parameter = new RunbookParameter(name, type, required, null, values, min, max, pattern, description)
        {
            Secret = f.TryGetValue("secret", out var secretNode) && y.Bool(secretNode, "secret"),
        };

        if (f.TryGetValue("default", out var defaultNode))
        {
            if (required)
                throw y.Error(defaultNode, $"{what} is required, so it cannot have a default: drop one of the two");
            var value = y.ToJson(defaultNode)
                ?? throw y.Error(defaultNode, $"default of {what} is empty: leave it out for no default");
            if (ParameterBinder.Problem(parameter, value) is { } problem)
            {
                var hint = type == ParameterType.String && value.GetValueKind() != System.Text.Json.JsonValueKind.String ? " (quote it)" : "";
                throw y.Error(defaultNode, $"default of {what} {problem}{hint}");
            }
            parameter = parameter with { Default = value };
        }
        return parameter;
    }

    private static RunbookOptions ReadOptions(RunbookYaml y, YamlNode node, List<RunbookParameter> parameters)
    {
        var f = y.Fields(node, "options", "requires_approval", "approvers_role", "timeout", "approval_timeout", "concurrency_key");
        var options = RunbookOptions.Default;
        if (f.TryGetValue("requires_approval", out var approval))
            options = options with { RequiresApproval = y.Bool(approval, "requires_approval") };
        if (f.TryGetValue("approvers_role", out var roleNode))
        {
            var text = y.Text(roleNode, "approvers_role");
            options = options with
            {
                ApproversRole = Roles.ParseOrNull(text) ?? throw y.Error(roleNode, $"approvers_role must be one of {Roles.AllNames}, not '{text}'"),
            };
        }
        if (f.TryGetValue("timeout", out var timeout))
            options = options with { Timeout = y.Duration(timeout, "timeout", allowZero: false) };
        if (f.TryGetValue("approval_timeout", out var approvalTimeout))
            options = options with { ApprovalTimeout = y.Duration(approvalTimeout, "approval_timeout", allowZero: false) };
        if (f.TryGetValue("concurrency_key", out var keyNode))
        {
            var key = y.Text(keyNode, "concurrency_key");
            foreach (var reference in References(y, keyNode, key))
            {
                if (reference.IsStepOutput)
                    throw y.Error(keyNode, $"concurrency_key cannot use {{{{ {reference} }}}}: the key is decided before any step runs, so it may only use params");
                CheckParameter(y, keyNode, reference, parameters);
            }
            options = options with { ConcurrencyKey = key };
        }
        // Approval settings without approval would look like a safeguard that is not there.
        if (!options.RequiresApproval)
        {
            foreach (var key in new[] { "approvers_role", "approval_timeout" })
            {
                if (f.TryGetValue(key, out var set))
                    throw y.Error(set, $"{key} has no effect without requires_approval: true");
            }
        }
        return options;
    }

    private static RunbookStep ReadStep(
        RunbookYaml y, YamlNode node, IReadOnlyDictionary<string, IStepExecutor> executors,
        List<RunbookParameter> parameters, List<RunbookStep> earlier, HashSet<string> allSteps)
    {
        var f = y.Fields(node, "a step", "name", "kind", "with", "attempts", "backoff", "timeout");
        var nameNode = y.Required(f, node, "name", "a step");
        var name = Identifier(y, nameNode, "step name");
        if (earlier.Any(s => s.Name == name))
            throw y.Error(nameNode, $"step name '{name}' is used twice");
        var what = $"step '{name}'";

        var kindNode = y.Required(f, node, "kind", what);
        var kind = y.Text(kindNode, "kind");
        if (!executors.TryGetValue(kind, out var executor))
            throw y.Error(kindNode, $"{what} has an unknown kind '{kind}' (known kinds: {string.Join(", ", executors.Keys.Order(StringComparer.Ordinal))})");

        var with = new JsonObject();
        if (f.TryGetValue("with", out var withNode) && !(withNode is YamlScalarNode s && RunbookYaml.IsNull(s)))
        {
            if (withNode is not YamlMappingNode inputs)
                throw y.Error(withNode, $"with of {what} must be a mapping of inputs ({StepInputValidator.InputNames(executor)})");
            foreach (var (keyNode, valueNode) in inputs.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value ?? "";
                var input = executor.Inputs.FirstOrDefault(i => i.Name == key)
                    ?? throw y.Error(keyNode, $"{kind} takes no input '{keyNode}' (its inputs: {StepInputValidator.InputNames(executor)})");
                var templated = false;
                var value = y.ToJson(valueNode, (scalar, text) =>
                {
                    foreach (var reference in References(y, scalar, text))
                    {
                        templated = true;
                        if (reference.IsStepOutput)
                            CheckEarlierStep(y, scalar, reference, name, earlier, allSteps);
                        else
                            CheckParameter(y, scalar, reference, parameters);
                    }
                });
                // Literals are checked now, with their line; templated values once the parameters are known.
                if (!templated && StepInputValidator.Problem(input, value) is { } problem)
                    throw y.Error(valueNode, $"input '{key}' of {what} {problem}");
                with[key] = value;
            }
        }
        foreach (var input in executor.Inputs.Where(i => i.Required && !with.ContainsKey(i.Name)))
            throw y.Error(withNode ?? node, $"{what} ({kind}) needs input '{input.Name}': {input.Description}");

        var attempts = f.TryGetValue("attempts", out var a) ? (int)y.Integer(a, "attempts", 1, MaxAttempts) : RunbookStep.DefaultAttempts;
        var backoff = f.TryGetValue("backoff", out var b) ? y.Duration(b, "backoff", allowZero: true) : RunbookStep.DefaultBackoff;
        TimeSpan? timeout = f.TryGetValue("timeout", out var t) ? y.Duration(t, "timeout", allowZero: false) : null;
        return new RunbookStep(name, kind, with, attempts, backoff, timeout);
    }

    private static IReadOnlyList<TemplateReference> References(RunbookYaml y, YamlNode node, string text)
    {
        try
        {
            return Templates.References(text);
        }
        catch (TemplateException e)
        {
            throw y.Error(node, e.Message);
        }
    }

    private static void CheckParameter(RunbookYaml y, YamlNode node, TemplateReference reference, List<RunbookParameter> parameters)
    {
        if (parameters.Any(p => p.Name == reference.Name))
            return;
        var known = parameters.Count == 0 ? "the runbook has none" : "parameters: " + string.Join(", ", parameters.Select(p => p.Name));
        throw y.Error(node, $"{{{{ {reference} }}}} names an unknown parameter '{reference.Name}' ({known})");
    }

    private static void CheckEarlierStep(RunbookYaml y, YamlNode node, TemplateReference reference, string step, List<RunbookStep> earlier, HashSet<string> allSteps)
    {
        if (earlier.Any(s => s.Name == reference.Name))
            return;
        var why = reference.Name == step ? "a step cannot use its own outputs"
            : allSteps.Contains(reference.Name) ? $"step '{reference.Name}' runs after '{step}'"
            : $"there is no step '{reference.Name}'";
        throw y.Error(node, $"{{{{ {reference} }}}} must name an earlier step: {why}");
    }

    private static List<YamlNode> Items(RunbookYaml y, YamlNode node, string what) =>
        node is YamlSequenceNode sequence ? sequence.Children.ToList() : throw y.Error(node, $"{what} must be a list");

    /// <summary>Names as written, for telling "later step" from "no such step"; the steps themselves are checked in order.</summary>
    private static HashSet<string> AllStepNames(List<YamlNode> steps) =>
        steps.OfType<YamlMappingNode>()
            .SelectMany(m => m.Children.Where(c => c.Key is YamlScalarNode { Value: "name" }).Select(c => (c.Value as YamlScalarNode)?.Value))
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);

    private static string Identifier(RunbookYaml y, YamlNode node, string what)
    {
        var text = y.Text(node, what);
        return IdentifierRule().IsMatch(text)
            ? text
            : throw y.Error(node, $"{what} '{text}' must be lower-case letters, digits and '_', starting with a letter or '_', at most 63 characters");
    }

    private static void OnlyFor(RunbookYaml y, YamlNode node, ParameterType actual, ParameterType expected, string key, string what)
    {
        if (actual != expected)
            throw y.Error(node, $"{key} applies to {expected.ToString().ToLowerInvariant()} parameters only, and {what} is {actual.ToString().ToLowerInvariant()}");
    }

    private static string? OptionalText(RunbookYaml y, YamlNode node, string what) =>
        node is YamlScalarNode s && RunbookYaml.IsNull(s) ? null : y.Text(node, what);

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdentifierRule();
}
