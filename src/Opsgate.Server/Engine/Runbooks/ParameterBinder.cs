using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Opsgate.Server.Hosting;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>Turns the parameters a user sent for a job into the complete, checked set the job runs with.</summary>
internal static class ParameterBinder
{
    public const string DnsLabel = "dns-label";
    public const string DnsSubdomain = "dns-subdomain";

    // Patterns come from runbook authors and values from API callers: a pathological pair must not hang a request.
    private static readonly TimeSpan PatternTimeout = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Every declared parameter, in declaration order: the given value, else the default, else (optional, no default)
    /// null, so that templates can tell "not given" from "not a parameter".
    /// </summary>
    /// <exception cref="ParameterException">Unknown, missing or ill-typed parameter; the field is <c>params.NAME</c>.</exception>
    public static JsonObject Bind(Runbook runbook, JsonObject? input)
    {
        // Re-parsed so every value is JsonElement-backed, whichever way the caller built the object.
        var given = input is null ? new JsonObject() : (JsonObject)JsonNode.Parse(input.ToJsonString())!;
        foreach (var (name, _) in given)
        {
            if (runbook.Parameter(name) is null)
            {
                var known = runbook.Parameters.Count == 0 ? "it takes none" : "its parameters: " + string.Join(", ", runbook.Parameters.Select(p => p.Name));
                throw new ParameterException($"params.{name}", $"is not a parameter of runbook {runbook.Name} ({known})");
            }
        }

        var bound = new JsonObject();
        foreach (var parameter in runbook.Parameters)
        {
            var value = given[parameter.Name]?.DeepClone() ?? parameter.Default?.DeepClone();
            if (value is null && parameter.Required)
                throw new ParameterException($"params.{parameter.Name}", "is required");
            if (value is not null && Problem(parameter, value) is { } problem)
                throw new ParameterException($"params.{parameter.Name}", problem);
            bound[parameter.Name] = value;
        }
        return (JsonObject)JsonNode.Parse(bound.ToJsonString())!;
    }

    /// <summary>Why a (non-null) value is not acceptable for the parameter, or null when it is. Also checks defaults when a runbook loads.</summary>
    public static string? Problem(RunbookParameter parameter, JsonNode value)
    {
        var kind = value.GetValueKind();
        switch (parameter.Type)
        {
            case ParameterType.Int:
                // Judged by the JSON text, whatever backs the node. 5.0 and 5e0 are refused: steps read ints with
                // GetValue<int>(), which fails on them.
                var integer = kind == JsonValueKind.Number
                    && long.TryParse(value.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
                    && (parameter.Min is not { } min || number >= min) && (parameter.Max is not { } max || number <= max);
                return integer ? null : "must be an integer" + Range(parameter);
            case ParameterType.Bool:
                return kind is JsonValueKind.True or JsonValueKind.False ? null : "must be true or false";
            case ParameterType.Object:
                return value is JsonObject ? null : "must be an object";
            case ParameterType.Any:
                return null;
            case ParameterType.Enum:
                var allowed = parameter.Values ?? [];
                return kind == JsonValueKind.String && allowed.Contains(value.GetValue<string>(), StringComparer.Ordinal)
                    ? null
                    : $"must be one of {string.Join(", ", allowed)}";
            default:
                if (kind != JsonValueKind.String)
                    return "must be a string";
                var text = value.GetValue<string>();
                return text.Length == 0 ? "must not be empty" : PatternProblem(parameter.Pattern, text);
        }
    }

    /// <summary>Null when the pattern is one <see cref="Problem"/> can use, else why not.</summary>
    public static string? InvalidPattern(string pattern)
    {
        if (pattern is DnsLabel or DnsSubdomain)
            return null;
        try
        {
            // The pattern as written first, so an error message quotes what the author wrote.
            _ = new Regex(pattern, RegexOptions.CultureInvariant, PatternTimeout);
            _ = new Regex(Anchored(pattern), RegexOptions.CultureInvariant, PatternTimeout);
            return null;
        }
        catch (ArgumentException e)
        {
            return $"pattern is not dns-label, dns-subdomain or a valid regular expression: {e.Message}";
        }
    }

    private static string? PatternProblem(string? pattern, string text)
    {
        switch (pattern)
        {
            case null:
                return null;
            case DnsLabel:
                return Validate.IsDnsLabel(text) ? null : Validate.DnsLabelRule;
            case DnsSubdomain:
                return Validate.IsDnsSubdomain(text) ? null : Validate.DnsSubdomainRule;
        }
        try
        {
            return Regex.IsMatch(text, Anchored(pattern), RegexOptions.CultureInvariant, PatternTimeout) ? null : $"must match {pattern}";
        }
        catch (RegexMatchTimeoutException)
        {
            return $"could not be checked against {pattern} in time";
        }
    }

    // The whole value must match: a pattern written as "[a-z]+" must not accept "x; rm -rf".
    private static string Anchored(string pattern) => $"^(?:{pattern})$";

    private static string Range(RunbookParameter parameter) => (parameter.Min, parameter.Max) switch
    {
        (null, null) => "",
        ({ } min, null) => $" of at least {min.ToString(CultureInfo.InvariantCulture)}",
        (null, { } max) => $" of at most {max.ToString(CultureInfo.InvariantCulture)}",
        var (min, max) => $" between {min.Value.ToString(CultureInfo.InvariantCulture)} and {max.Value.ToString(CultureInfo.InvariantCulture)}",
    };
}
