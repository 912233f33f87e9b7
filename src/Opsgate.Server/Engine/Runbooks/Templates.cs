using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>What a template expression refers to: <c>params.NAME</c>, or <c>steps.NAME.outputs.KEY</c> (then <see cref="Key"/> is set).</summary>
internal sealed record TemplateReference(bool IsStepOutput, string Name, string? Key)
{
    public override string ToString() => IsStepOutput ? $"steps.{Name}.outputs.{Key}" : $"params.{Name}";
}

/// <summary>A template that is malformed or names something that does not exist.</summary>
internal sealed class TemplateException(string message) : Exception(message);

/// <summary>
/// <c>{{ params.NAME }}</c> and <c>{{ steps.STEP.outputs.KEY }}</c> inside the strings of a JSON tree. A string that is
/// exactly one expression becomes the referenced value with its JSON type (<c>replicas: "{{ params.n }}"</c> is a number);
/// expressions inside longer strings are replaced by their text. There is deliberately nothing else: no filters, no
/// logic, so that every reference can be checked when a runbook loads.
/// </summary>
internal static partial class Templates
{
    /// <summary>A new tree with every expression replaced. Its values are backed by <see cref="JsonElement"/>, so <c>GetValue&lt;int&gt;()</c> works on numbers.</summary>
    /// <param name="parameters">Bound parameters; an optional parameter that was not given is present with a null value (it renders as null, or "" inside text).</param>
    /// <param name="stepOutputs">Outputs of the steps that have run, by step name.</param>
    /// <exception cref="TemplateException">An expression is malformed or names an unknown parameter or step output.</exception>
    public static JsonNode? Render(JsonNode? template, JsonObject parameters, IReadOnlyDictionary<string, JsonObject> stepOutputs)
    {
        var rendered = Substitute(template, parameters, stepOutputs);
        return rendered is null ? null : JsonNode.Parse(rendered.ToJsonString());
    }

    /// <summary><see cref="Render"/> for a step's <c>with:</c>.</summary>
    public static JsonObject RenderObject(JsonObject template, JsonObject parameters, IReadOnlyDictionary<string, JsonObject> stepOutputs) =>
        (JsonObject)Render(template, parameters, stepOutputs)!;

    /// <summary>Everything the strings of a tree refer to.</summary>
    /// <exception cref="TemplateException">An expression is malformed.</exception>
    public static IReadOnlySet<TemplateReference> References(JsonNode? template)
    {
        var found = new HashSet<TemplateReference>();
        foreach (var text in Strings(template))
            found.UnionWith(References(text));
        return found;
    }

    /// <summary>What one string refers to.</summary>
    /// <exception cref="TemplateException">An expression is malformed.</exception>
    public static IReadOnlyList<TemplateReference> References(string text) => Parse(text).Select(e => e.Reference).ToList();

    /// <summary>True when the tree refers to a step output, so it can only be rendered (and checked) when the job runs.</summary>
    public static bool UsesStepOutputs(JsonNode? template) => References(template).Any(r => r.IsStepOutput);

    private static JsonNode? Substitute(JsonNode? node, JsonObject parameters, IReadOnlyDictionary<string, JsonObject> stepOutputs)
    {
        switch (node)
        {
            case JsonObject obj:
                var copy = new JsonObject();
                foreach (var (key, value) in obj)
                    copy[key] = Substitute(value, parameters, stepOutputs);
                return copy;
            case JsonArray array:
                var items = new JsonArray();
                foreach (var item in array)
                    items.Add(Substitute(item, parameters, stepOutputs));
                return items;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return SubstituteString(value.GetValue<string>(), parameters, stepOutputs);
            default:
                return node?.DeepClone();
        }
    }

    private static JsonNode? SubstituteString(string text, JsonObject parameters, IReadOnlyDictionary<string, JsonObject> stepOutputs)
    {
        var expressions = Parse(text);
        if (expressions.Count == 0)
            return JsonValue.Create(text);
        if (expressions.Count == 1 && expressions[0].Length == text.Length)
            return Resolve(expressions[0].Reference, parameters, stepOutputs)?.DeepClone();

        var result = new StringBuilder();
        var at = 0;
        foreach (var expression in expressions)
        {
            result.Append(text, at, expression.Index - at);
            result.Append(AsText(Resolve(expression.Reference, parameters, stepOutputs)));
            at = expression.Index + expression.Length;
        }
        result.Append(text, at, text.Length - at);
        return JsonValue.Create(result.ToString());
    }

    private static JsonNode? Resolve(TemplateReference reference, JsonObject parameters, IReadOnlyDictionary<string, JsonObject> stepOutputs)
    {
        if (!reference.IsStepOutput)
        {
            return parameters.TryGetPropertyValue(reference.Name, out var value)
                ? value
                : throw new TemplateException($"{{{{ {reference} }}}} names an unknown parameter '{reference.Name}'");
        }
        if (!stepOutputs.TryGetValue(reference.Name, out var outputs))
            throw new TemplateException($"{{{{ {reference} }}}}: step '{reference.Name}' has no outputs (it has not run, or is not a step of this runbook)");
        return outputs.TryGetPropertyValue(reference.Key!, out var output)
            ? output
            : throw new TemplateException($"{{{{ {reference} }}}}: step '{reference.Name}' has no output '{reference.Key}' (its outputs: {Names(outputs)})");
    }

    private static string Names(JsonObject outputs) =>
        outputs.Count == 0 ? "none" : string.Join(", ", outputs.Select(o => o.Key));

    /// <summary>Text for a value inside a longer string: strings as they are, null as nothing, anything else as JSON.</summary>
    private static string AsText(JsonNode? value) => value switch
    {
        null => "",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => value.ToJsonString(),
    };

    private static IEnumerable<string> Strings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                return obj.SelectMany(p => Strings(p.Value));
            case JsonArray array:
                return array.SelectMany(Strings);
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return [value.GetValue<string>()];
            default:
                return [];
        }
    }

    private readonly record struct Expression(int Index, int Length, TemplateReference Reference);

    private static List<Expression> Parse(string text)
    {
        var found = new List<Expression>();
        var at = 0;
        while (text.IndexOf("{{", at, StringComparison.Ordinal) is var open and >= 0)
        {
            var close = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0)
                throw new TemplateException($"'{text}' has a '{{{{' without a closing '}}}}'");
            var inner = text[(open + 2)..close];
            var match = Expr().Match(inner);
            if (!match.Success)
            {
                throw new TemplateException(
                    $"'{{{{{inner}}}}}' is not a template expression: use {{{{ params.NAME }}}} or {{{{ steps.STEP.outputs.KEY }}}}");
            }
            var reference = match.Groups["param"].Success
                ? new TemplateReference(false, match.Groups["param"].Value, null)
                : new TemplateReference(true, match.Groups["step"].Value, match.Groups["key"].Value);
            found.Add(new Expression(open, close + 2 - open, reference));
            at = close + 2;
        }
        return found;
    }

    [GeneratedRegex(@"^\s*(params\.(?<param>[a-z_][a-z0-9_]*)|steps\.(?<step>[a-z_][a-z0-9_]*)\.outputs\.(?<key>[A-Za-z_][A-Za-z0-9_-]*))\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Expr();
}
