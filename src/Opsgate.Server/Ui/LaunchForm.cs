using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Primitives;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Ui;

/// <summary>One parameter of the launch form as the page draws it: which input, what it holds now, what was wrong.</summary>
/// <param name="Input">text, number, checkbox, select, password or textarea.</param>
/// <param name="Value">What the input shows: what the user typed, else the default. Never a secret.</param>
/// <param name="Withheld">An object typed with secret values in it (see JobSecrets): not shown again, to be typed again.</param>
internal sealed record LaunchField(RunbookParameter Parameter, string Input, string? Value, bool Checked, string? Error, bool Withheld = false)
{
    public string Id => "p-" + Parameter.Name;

    public string Name => LaunchForm.Prefix + Parameter.Name;

    /// <summary>The browser refuses an empty field only when the API would: required and without a default.</summary>
    public bool Required => Parameter.Required && Parameter.Default is null && Input != "checkbox";

    /// <summary>The HTML pattern for the browser's own check (the server's check is the one that counts).</summary>
    public string? Pattern => Parameter.Pattern switch
    {
        null => null,
        ParameterBinder.DnsLabel => "[a-z0-9]([\\-a-z0-9]*[a-z0-9])?",
        ParameterBinder.DnsSubdomain => "[a-z0-9]([\\-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([\\-a-z0-9]*[a-z0-9])?)*",
        var regex => regex,
    };

    public int? MaxLength => Parameter.Pattern switch
    {
        ParameterBinder.DnsLabel => 63,
        ParameterBinder.DnsSubdomain => 253,
        _ => null,
    };

    /// <summary>What the pattern asks for, in words (the browser shows it when the pattern does not match).</summary>
    public string? PatternTitle => Parameter.Pattern switch
    {
        null => null,
        ParameterBinder.DnsLabel => Hosting.Validate.DnsLabelRule,
        ParameterBinder.DnsSubdomain => Hosting.Validate.DnsSubdomainRule,
        var regex => "must match " + regex,
    };
}

/// <summary>
/// The launch form of a runbook: its typed parameters drawn as inputs, and the posted form read back into the JSON
/// parameters the API's submit takes. Reading converts only what a form cannot say in JSON (a number, a checkbox, an
/// object typed as JSON) and otherwise passes the text on as a string, so every judgement (required, type, range,
/// pattern, enum) is <see cref="ParameterBinder"/>'s and every message is the API's own.
/// </summary>
internal static class LaunchForm
{
    public const string Prefix = "p.";

    /// <summary>The parameters as the API would receive them from this form: an empty field is a parameter not given.</summary>
    public static JsonObject Read(Runbook runbook, IFormCollection form)
    {
        var parameters = new JsonObject();
        foreach (var parameter in runbook.Parameters)
        {
            var posted = form[Prefix + parameter.Name];
            if (parameter.Type == ParameterType.Bool)
            {
                // An unchecked box posts nothing: that is "false", not "not given".
                parameters[parameter.Name] = posted.Contains("true");
                continue;
            }
            var text = posted.Count > 0 ? posted[^1] : null;
            if (string.IsNullOrWhiteSpace(text))
                continue;
            parameters[parameter.Name] = parameter.Type switch
            {
                ParameterType.Int => Json(text) is JsonValue number && number.GetValueKind() == JsonValueKind.Number ? number : JsonValue.Create(text),
                ParameterType.Object or ParameterType.Any => Json(text) ?? JsonValue.Create(text),
                _ => JsonValue.Create(text),
            };
        }
        return parameters;
    }

    /// <summary>
    /// The inputs to draw. <paramref name="posted"/> (null on a first visit) is the form as sent, kept as typed except
    /// secrets, which are never sent back to the browser: secret parameters, and the <paramref name="withheld"/> ones
    /// (objects that held secret-named values); <paramref name="errors"/> maps a parameter to the API's message.
    /// </summary>
    public static IReadOnlyList<LaunchField> Fields(
        Runbook runbook, IFormCollection? posted, IReadOnlyDictionary<string, string> errors, IReadOnlySet<string>? withheld = null) =>
        runbook.Parameters.Select(p =>
        {
            if (withheld?.Contains(p.Name) == true)
                return new LaunchField(p, "textarea", null, false, errors.GetValueOrDefault(p.Name), Withheld: true);
            var error = errors.GetValueOrDefault(p.Name);
            if (p.Type == ParameterType.Bool)
                return new LaunchField(p, "checkbox", "true", posted is null ? p.Default?.GetValueKind() == JsonValueKind.True : posted[Prefix + p.Name].Contains("true"), error);
            var input = p switch
            {
                { Secret: true } => "password",
                { Type: ParameterType.Int } => "number",
                { Type: ParameterType.Enum } => "select",
                { Type: ParameterType.Object } => "textarea",
                _ => "text",
            };
            var value = input == "password" ? null : posted is null ? Text(p.Default) : Last(posted[Prefix + p.Name]);
            return new LaunchField(p, input, value, false, error);
        }).ToList();

    /// <summary>A default as the user would type it: a string as itself, anything else as JSON.</summary>
    public static string? Text(JsonNode? value) => value switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o => o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }),
        _ => value.ToJsonString(),
    };

    /// <summary>The parameters whose typed value held secrets: where the audit's redacted copy differs from what was sent.</summary>
    public static IReadOnlySet<string> Withheld(JsonObject? input, JsonObject? redacted)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (input is null || redacted is null)
            return names;
        foreach (var (name, value) in input)
        {
            if (value is JsonObject && !JsonNode.DeepEquals(value, redacted[name]))
                names.Add(name);
        }
        return names;
    }

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string? Last(StringValues values) => values.Count > 0 ? values[^1] : null;

    private static JsonNode? Json(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
