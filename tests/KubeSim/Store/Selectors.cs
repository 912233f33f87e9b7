using System.Text.Json.Nodes;

namespace KubeSim.Store;

/// <summary>A parsed label selector: <c>a=b,c!=d,e in (f,g),h notin (i),j,!k</c>.</summary>
internal sealed class LabelSelector
{
    private enum Op { Equals, NotEquals, In, NotIn, Exists, NotExists }

    private sealed record Requirement(string Key, Op Op, IReadOnlyList<string> Values);

    private readonly List<Requirement> _requirements;

    private LabelSelector(List<Requirement> requirements) => _requirements = requirements;

    public static readonly LabelSelector Everything = new([]);

    public bool IsEmpty => _requirements.Count == 0;

    public static LabelSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return Everything;
        var requirements = new List<Requirement>();
        foreach (var part in SplitTopLevel(text))
        {
            var p = part.Trim();
            if (p.Length == 0) continue;
            requirements.Add(ParseOne(p));
        }
        return new LabelSelector(requirements);
    }

    /// <summary>A selector from a <c>LabelSelector</c> object (matchLabels + matchExpressions).</summary>
    public static LabelSelector FromObject(JsonNode? selector)
    {
        var requirements = new List<Requirement>();
        foreach (var (k, v) in JsonExtensions.StringMap(selector.At("matchLabels")))
        {
            requirements.Add(new(k, Op.Equals, [v]));
        }
        foreach (var e in selector.At("matchExpressions").Objects())
        {
            var values = e["values"] is JsonArray a ? a.Select(x => x?.GetValue<string>() ?? "").ToList() : [];
            var op = e.Str("operator") switch
            {
                "In" => Op.In,
                "NotIn" => Op.NotIn,
                "Exists" => Op.Exists,
                "DoesNotExist" => Op.NotExists,
                var other => throw KubeApiException.BadRequest($"unsupported selector operator {other}"),
            };
            requirements.Add(new(e.Str("key") ?? "", op, values));
        }
        return new LabelSelector(requirements);
    }

    public bool Matches(IReadOnlyDictionary<string, string> labels) => _requirements.All(r => r.Op switch
    {
        Op.Equals => labels.TryGetValue(r.Key, out var v) && v == r.Values[0],
        Op.NotEquals => !labels.TryGetValue(r.Key, out var v) || v != r.Values[0],
        Op.In => labels.TryGetValue(r.Key, out var v) && r.Values.Contains(v),
        Op.NotIn => !labels.TryGetValue(r.Key, out var v) || !r.Values.Contains(v),
        Op.Exists => labels.ContainsKey(r.Key),
        Op.NotExists => !labels.ContainsKey(r.Key),
        _ => false,
    });

    public bool Matches(JsonObject obj) => IsEmpty || Matches(obj.Labels());

    /// <summary>The string form used in a Scale's <c>status.selector</c>.</summary>
    public override string ToString() => string.Join(",", _requirements.Select(r => r.Op switch
    {
        Op.Equals => $"{r.Key}={r.Values[0]}",
        Op.NotEquals => $"{r.Key}!={r.Values[0]}",
        Op.In => $"{r.Key} in ({string.Join(",", r.Values)})",
        Op.NotIn => $"{r.Key} notin ({string.Join(",", r.Values)})",
        Op.Exists => r.Key,
        _ => "!" + r.Key,
    }));

    private static Requirement ParseOne(string p)
    {
        if (p.StartsWith('!')) return new(p[1..].Trim(), Op.NotExists, []);
        var ne = p.IndexOf("!=", StringComparison.Ordinal);
        if (ne > 0) return new(p[..ne].Trim(), Op.NotEquals, [p[(ne + 2)..].Trim()]);
        var eq = p.IndexOf('=', StringComparison.Ordinal);
        if (eq > 0)
        {
            var value = p[(eq + 1)..];
            if (value.StartsWith('=')) value = value[1..];
            return new(p[..eq].Trim(), Op.Equals, [value.Trim()]);
        }
        var open = p.IndexOf('(', StringComparison.Ordinal);
        if (open > 0 && p.EndsWith(')'))
        {
            var head = p[..open].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = p[(open + 1)..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (head.Length == 2 && head[1] is "in" or "notin")
            {
                return new(head[0], head[1] == "in" ? Op.In : Op.NotIn, values);
            }
        }
        if (p.Contains(' ', StringComparison.Ordinal) || p.Contains('(', StringComparison.Ordinal))
        {
            throw KubeApiException.BadRequest($"unable to parse requirement: {p}");
        }
        return new(p, Op.Exists, []);
    }

    private static IEnumerable<string> SplitTopLevel(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(': depth++; break;
                case ')': depth--; break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }
        yield return text[start..];
    }
}

/// <summary>A parsed field selector: <c>metadata.name=x,status.phase!=Running</c>, on the fields the apiserver allows.</summary>
internal sealed class FieldSelector
{
    private static readonly Dictionary<string, string[]> Extra = new(StringComparer.Ordinal)
    {
        ["pods"] = ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"],
        ["secrets"] = ["type"],
        ["namespaces"] = ["status.phase"],
        ["persistentvolumeclaims"] = [],
    };

    private readonly List<(string Field, bool Equal, string Value)> _terms;

    private FieldSelector(List<(string, bool, string)> terms) => _terms = terms;

    public static readonly FieldSelector Everything = new([]);

    public bool IsEmpty => _terms.Count == 0;

    public static FieldSelector Parse(string? text, ResourceType type)
    {
        if (string.IsNullOrWhiteSpace(text)) return Everything;
        var terms = new List<(string, bool, string)>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var ne = raw.IndexOf("!=", StringComparison.Ordinal);
            string field, value;
            bool equal;
            if (ne > 0)
            {
                (field, value, equal) = (raw[..ne], raw[(ne + 2)..], false);
            }
            else
            {
                var eq = raw.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) throw KubeApiException.BadRequest($"invalid selector: '{text}'; can't understand '{raw}'");
                value = raw[(eq + 1)..];
                if (value.StartsWith('=')) value = value[1..];
                (field, equal) = (raw[..eq], true);
            }
            field = field.Trim();
            var allowed = field is "metadata.name" or "metadata.namespace"
                || (Extra.TryGetValue(type.Plural, out var more) && more.Contains(field));
            if (!allowed) throw KubeApiException.BadRequest($"field label not supported: {field}");
            terms.Add((field, equal, value.Trim()));
        }
        return new FieldSelector(terms);
    }

    /// <summary>The value of <c>metadata.name=x</c> when the selector pins one name (as kubectl wait and delete do).</summary>
    public string? PinnedName => _terms.FirstOrDefault(t => t.Field == "metadata.name" && t.Equal).Value;

    public bool Matches(JsonObject obj) => _terms.All(t =>
    {
        var actual = obj.Str(t.Field.Split('.')) ?? "";
        return t.Equal ? actual == t.Value : actual != t.Value;
    });
}
