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
/// <para>
/// <c>{% raw %}...{% endraw %}</c> (Jinja's own escape) keeps the text between the markers as it is and drops the
/// markers, so text for another template engine (an inline playbook's <c>{{ inventory_hostname }}</c> for ansible)
/// passes through. Values substituted for expressions are never scanned again, so a parameter may hold such text as it is.
/// </para>
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
    public static IReadOnlyList<TemplateReference> References(string text) =>
        Parse(text).Where(p => p.Reference is not null).Select(p => p.Reference!).ToList();

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
        var parts = Parse(text);
        if (parts is [{ Reference: { } only }])
            return Resolve(only, parameters, stepOutputs)?.DeepClone();
        if (parts is [] or [{ Reference: null }])
            return JsonValue.Create(parts is [] ? "" : parts[0].Text);

        var result = new StringBuilder();
        foreach (var part in parts)
            result.Append(part.Reference is { } reference ? AsText(Resolve(reference, parameters, stepOutputs)) : part.Text);
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

    /// <summary>A piece of a template string: literal text, or an expression (<see cref="Reference"/> set).</summary>
    private readonly record struct Part(string Text, TemplateReference? Reference);

    /// <summary>The string as literal text and expressions, in order; <c>{% raw %}</c> blocks are literal, without their markers.</summary>
    private static List<Part> Parse(string text)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        // Most strings have no block at all: spare them the two regular expressions.
        var blocks = text.Contains("{%", StringComparison.Ordinal);
        var at = 0;
        while (at < text.Length)
        {
            var open = text.IndexOf("{{", at, StringComparison.Ordinal);
            var raw = blocks ? RawOpen().Match(text, at) : Match.Empty;
            var endRaw = blocks ? RawClose().Match(text, at) : Match.Empty;
            var next = Math.Min(open < 0 ? text.Length : open, Math.Min(raw.Success ? raw.Index : text.Length, endRaw.Success ? endRaw.Index : text.Length));
            literal.Append(text, at, next - at);
            at = next;
            if (at == text.Length)
                break;
            if (endRaw.Success && endRaw.Index == at)
                throw new TemplateException($"'{endRaw.Value}' without a '{{% raw %}}' before it");
            if (raw.Success && raw.Index == at)
            {
                var close = RawClose().Match(text, raw.Index + raw.Length);
                if (!close.Success)
                    throw new TemplateException($"'{raw.Value}' without a closing '{{% endraw %}}'");
                literal.Append(text, raw.Index + raw.Length, close.Index - raw.Index - raw.Length);
                at = close.Index + close.Length;
                continue;
            }
            var end = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (end < 0)
                throw new TemplateException($"'{text}' has a '{{{{' without a closing '}}}}'");
            var inner = text[(open + 2)..end];
            var match = Expr().Match(inner);
            if (!match.Success)
            {
                throw new TemplateException(
                    $"'{{{{{inner}}}}}' is not a template expression: use {{{{ params.NAME }}}} or {{{{ steps.STEP.outputs.KEY }}}}, " +
                    "or put text for another template engine (ansible's Jinja) between {% raw %} and {% endraw %}");
            }
            if (literal.Length > 0)
                parts.Add(new Part(literal.ToString(), null));
            literal.Clear();
            parts.Add(new Part("", match.Groups["param"].Success
                ? new TemplateReference(false, match.Groups["param"].Value, null)
                : new TemplateReference(true, match.Groups["step"].Value, match.Groups["key"].Value)));
            at = end + 2;
        }
        if (literal.Length > 0)
            parts.Add(new Part(literal.ToString(), null));
        return parts;
    }

    [GeneratedRegex(@"\{%\s*raw\s*%\}", RegexOptions.CultureInvariant)]
    private static partial Regex RawOpen();

    [GeneratedRegex(@"\{%\s*endraw\s*%\}", RegexOptions.CultureInvariant)]
    private static partial Regex RawClose();

    [GeneratedRegex(@"^\s*(params\.(?<param>[a-z_][a-z0-9_]*)|steps\.(?<step>[a-z_][a-z0-9_]*)\.outputs\.(?<key>[A-Za-z_][A-Za-z0-9_-]*))\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Expr();
}
