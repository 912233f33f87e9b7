using System.Text.Json;
using System.Text.Json.Nodes;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Tests.Engine;

public sealed class TemplatesTests
{
    private static readonly JsonObject Params = new()
    {
        ["statefulset"] = "postgres",
        ["ordinal"] = 0,
        ["target_replicas"] = 3,
        ["dry"] = true,
        ["message"] = null,
    };

    private static readonly Dictionary<string, JsonObject> NoOutputs = [];

    private static JsonNode? Render(string json, IReadOnlyDictionary<string, JsonObject>? outputs = null) =>
        Templates.Render(JsonNode.Parse(json), Params, outputs ?? NoOutputs);

    [Fact]
    public void A_string_that_is_one_expression_keeps_the_values_type()
    {
        var rendered = Render("""{"replicas": "{{ params.target_replicas }}", "dry": "{{params.dry}}", "name": "{{ params.statefulset }}"}""")!;

        Assert.Equal(JsonValueKind.Number, rendered["replicas"]!.GetValueKind());
        Assert.Equal(3, rendered["replicas"]!.GetValue<int>());
        Assert.Equal(3L, rendered["replicas"]!.GetValue<long>());
        Assert.True(rendered["dry"]!.GetValue<bool>());
        Assert.Equal("postgres", rendered["name"]!.GetValue<string>());
    }

    [Fact]
    public void Expressions_inside_longer_strings_are_replaced_by_their_text()
    {
        var rendered = Render("""{"pvc": "data-{{ params.statefulset }}-{{ params.ordinal }}", "note": "dry={{ params.dry }}, n={{params.target_replicas}}."}""")!;

        Assert.Equal("data-postgres-0", rendered["pvc"]!.GetValue<string>());
        Assert.Equal("dry=true, n=3.", rendered["note"]!.GetValue<string>());
    }

    [Fact]
    public void Nested_objects_and_arrays_are_rendered_and_the_template_is_left_as_it_was()
    {
        var template = JsonNode.Parse("""{"headers": {"X-Target": "{{ params.statefulset }}"}, "list": ["{{ params.ordinal }}", 7, null, "plain"]}""")!;
        var before = template.ToJsonString();

        var rendered = Templates.Render(template, Params, NoOutputs)!;

        Assert.Equal("""{"headers":{"X-Target":"postgres"},"list":[0,7,null,"plain"]}""", rendered.ToJsonString());
        Assert.Equal(before, template.ToJsonString());
        Assert.Equal(0, rendered["list"]![0]!.GetValue<int>());
    }

    [Fact]
    public void An_optional_parameter_that_was_not_given_renders_as_null_alone_and_as_nothing_in_text()
    {
        var rendered = Render("""{"message": "{{ params.message }}", "line": "msg=[{{ params.message }}]"}""")!;

        Assert.Null(rendered["message"]);
        Assert.True(((JsonObject)rendered).ContainsKey("message"));
        Assert.Equal("msg=[]", rendered["line"]!.GetValue<string>());
    }

    [Fact]
    public void Step_outputs_are_used_by_step_name_and_key()
    {
        var outputs = new Dictionary<string, JsonObject>
        {
            ["create"] = new() { ["id"] = "r-17", ["count"] = 4, ["labels"] = new JsonObject { ["app"] = "pg" } },
        };

        var rendered = Render("""{"url": "https://x/{{ steps.create.outputs.id }}", "n": "{{ steps.create.outputs.count }}", "labels": "{{ steps.create.outputs.labels }}", "text": "l={{ steps.create.outputs.labels }}"}""", outputs)!;

        Assert.Equal("https://x/r-17", rendered["url"]!.GetValue<string>());
        Assert.Equal(4, rendered["n"]!.GetValue<int>());
        Assert.Equal("pg", rendered["labels"]!["app"]!.GetValue<string>());
        Assert.Equal("""l={"app":"pg"}""", rendered["text"]!.GetValue<string>());
    }

    [Fact]
    public void An_unknown_parameter_is_an_error_naming_it()
    {
        var e = Assert.Throws<TemplateException>(() => Render("""{"x": "a-{{ params.nope }}"}"""));

        Assert.Contains("unknown parameter 'nope'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_step_or_output_is_an_error_naming_it()
    {
        var outputs = new Dictionary<string, JsonObject> { ["create"] = new() { ["id"] = "r-17" } };

        var noStep = Assert.Throws<TemplateException>(() => Render("""{"x": "{{ steps.later.outputs.id }}"}""", outputs));
        var noKey = Assert.Throws<TemplateException>(() => Render("""{"x": "{{ steps.create.outputs.name }}"}""", outputs));

        Assert.Contains("step 'later' has no outputs", noStep.Message, StringComparison.Ordinal);
        Assert.Contains("step 'create' has no output 'name' (its outputs: id)", noKey.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ param.x }}", "'{{ param.x }}' is not a template expression")]
    [InlineData("{{ params.X }}", "'{{ params.X }}' is not a template expression")]
    [InlineData("{{ params.x | upper }}", "is not a template expression")]
    [InlineData("{{ steps.a.id }}", "is not a template expression")]
    [InlineData("a-{{ params.x", "without a closing '}}'")]
    [InlineData("{{ inventory_hostname }}", "between {% raw %} and {% endraw %}")]
    [InlineData("{% raw %}{{ inventory_hostname }}", "'{% raw %}' without a closing '{% endraw %}'")]
    [InlineData("{{ params.x }}{% endraw %}", "'{% endraw %}' without a '{% raw %}' before it")]
    public void A_malformed_expression_is_refused(string text, string expected)
    {
        var e = Assert.Throws<TemplateException>(() => Templates.References(text));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_between_raw_and_endraw_is_kept_as_it_is_without_the_markers()
    {
        var rendered = Render("""{"yaml": "{{ params.statefulset }}: {% raw %}{{ inventory_hostname }}{% if x %}{% endraw %}!", "only": "{%raw%}{{ item }}{%  endraw  %}"}""")!;

        Assert.Equal("postgres: {{ inventory_hostname }}{% if x %}!", rendered["yaml"]!.GetValue<string>());
        Assert.Equal("{{ item }}", rendered["only"]!.GetValue<string>());
        Assert.Equal(["params.statefulset"], Templates.References(JsonNode.Parse("""{"a": "{{ params.statefulset }}{% raw %}{{ params.nope }}{% endraw %}"}""")).Select(r => r.ToString()));
    }

    [Fact]
    public void A_parameters_value_is_not_rendered_again()
    {
        var parameters = new JsonObject { ["playbook"] = "- debug: {msg: \"{{ inventory_hostname }}\"}" };

        var rendered = Templates.Render(JsonNode.Parse("""{"p": "{{ params.playbook }}", "q": "x {{ params.playbook }}"}"""), parameters, NoOutputs)!;

        Assert.Equal("- debug: {msg: \"{{ inventory_hostname }}\"}", rendered["p"]!.GetValue<string>());
        Assert.Equal("x - debug: {msg: \"{{ inventory_hostname }}\"}", rendered["q"]!.GetValue<string>());
    }

    [Fact]
    public void References_lists_every_parameter_and_step_output_used_once()
    {
        var template = JsonNode.Parse("""{"a": "{{ params.x }}/{{ params.y }}", "b": ["{{ params.x }}", {"c": "{{ steps.s1.outputs.k }}"}], "d": 5}""");

        var references = Templates.References(template);

        Assert.Equal(["params.x", "params.y", "steps.s1.outputs.k"], references.Select(r => r.ToString()).Order(StringComparer.Ordinal));
        Assert.True(Templates.UsesStepOutputs(template));
        Assert.False(Templates.UsesStepOutputs(JsonNode.Parse("""{"a": "{{ params.x }}", "b": "no templates"}""")));
        Assert.Empty(Templates.References(JsonNode.Parse("""{"a": "plain {text}", "n": 1}""")));
    }
}

public sealed class DurationsTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2m30s500ms", 150_500)]
    [InlineData("00:05:00", 300_000)]
    [InlineData("1.00:00:00", 86_400_000)]
    [InlineData("0s", 0)]
    public void Parses_go_and_dotnet_styles(string text, long milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), Durations.Parse(text));
    }

    [Theory]
    [InlineData("5")]
    [InlineData("five minutes")]
    [InlineData("5 m")]
    [InlineData("-5m")]
    [InlineData("5d")]
    [InlineData("")]
    [InlineData("-00:05:00")]
    [InlineData("99999999h")]
    public void Refuses_anything_else_with_a_message_showing_the_forms(string text)
    {
        var e = Assert.Throws<FormatException>(() => Durations.Parse(text));

        Assert.Equal($"'{text}' is not a duration: use e.g. 250ms, 30s, 5m, 1h30m or 00:05:00", e.Message);
    }

    [Theory]
    [InlineData(5_400_000, "1h30m")]
    [InlineData(250, "250ms")]
    [InlineData(0, "0s")]
    [InlineData(90_061_000, "25h1m1s")]
    public void Formats_the_shortest_go_style_text(long milliseconds, string expected)
    {
        Assert.Equal(expected, Durations.Format(TimeSpan.FromMilliseconds(milliseconds)));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), Durations.Parse(expected));
    }
}
