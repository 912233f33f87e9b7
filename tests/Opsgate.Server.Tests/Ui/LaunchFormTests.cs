using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Tests.Engine;
using Opsgate.Server.Ui;

namespace Opsgate.Server.Tests.Ui;

/// <summary>How the launch form's text becomes the JSON the API takes: only what a form cannot say is converted, the rest is the binder's to judge.</summary>
public sealed class LaunchFormTests
{
    private static readonly Runbook Typed = RunbookLoader.Load("""
        name: typed
        parameters:
          - {name: name, type: string, required: true, pattern: dns-label}
          - {name: count, type: int, default: 2, min: 1, max: 5}
          - {name: force, type: bool, default: true}
          - {name: mode, type: enum, values: [fast, safe]}
          - {name: vars, type: object}
          - {name: shards, type: any}
          - {name: token, type: string, secret: true}
        steps:
          - {name: noop, kind: noop, with: {message: "{{ params.name }}"}}
        """, "test/typed.yaml", FakeExecutors.ByKind);

    /// <summary>The form as posted; a field given twice keeps the later value.</summary>
    private static JsonObject Read(params (string Name, string Value)[] fields)
    {
        var form = new Dictionary<string, StringValues>(StringComparer.Ordinal);
        foreach (var (name, value) in fields)
            form[LaunchForm.Prefix + name] = value;
        return LaunchForm.Read(Typed, new FormCollection(form));
    }

    [Fact]
    public void Empty_fields_are_not_given_and_an_unchecked_box_is_false()
    {
        var read = Read(("name", "web"), ("count", " "), ("mode", ""), ("vars", ""), ("shards", ""), ("token", ""));
        Assert.Equal("""{"name":"web","force":false}""", read.ToJsonString());
        // The binder then fills the default in, as for an API call without it.
        Assert.Equal(2, ParameterBinder.Bind(Typed, read)["count"]!.GetValue<int>());
    }

    [Fact]
    public void Numbers_json_and_checkboxes_are_converted_everything_else_stays_text()
    {
        var read = Read(("name", "web"), ("count", "4"), ("force", "true"), ("mode", "fast"), ("vars", """{"a": [1, 2]}"""), ("shards", "auto"), ("token", "s3cret"));
        Assert.Equal("""{"name":"web","count":4,"force":true,"mode":"fast","vars":{"a":[1,2]},"shards":"auto","token":"s3cret"}""", read.ToJsonString());
        Assert.Equal(3, Read(("name", "web"), ("shards", "3"))["shards"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("count", "many", "params.count: must be an integer between 1 and 5")]
    [InlineData("count", "2.5", "params.count: must be an integer between 1 and 5")]
    [InlineData("count", "9", "params.count: must be an integer between 1 and 5")]
    [InlineData("vars", "not json", "params.vars: must be an object")]
    [InlineData("vars", "[1]", "params.vars: must be an object")]
    [InlineData("mode", "slow", "params.mode: must be one of fast, safe")]
    [InlineData("name", "Web", "params.name: must be a DNS-1123 label")]
    public void What_the_binder_refuses_is_refused_with_its_words(string field, string value, string message)
    {
        var read = Read(("name", "web"), (field, value));
        var e = Assert.Throws<ParameterException>(() => ParameterBinder.Bind(Typed, read));
        Assert.StartsWith(message, $"{e.Field}: {e.Message}", StringComparison.Ordinal);
    }

    [Fact]
    public void Secrets_are_never_drawn_back_and_defaults_are_drawn_as_typed()
    {
        var posted = new FormCollection(new Dictionary<string, StringValues>
        {
            [LaunchForm.Prefix + "name"] = "web", [LaunchForm.Prefix + "token"] = "s3cret", [LaunchForm.Prefix + "vars"] = """{"db_password": "x"}""",
        });
        var fields = LaunchForm.Fields(Typed, posted, new Dictionary<string, string> { ["count"] = "bad" }, new HashSet<string> { "vars" }).ToDictionary(f => f.Parameter.Name);
        Assert.Equal(("password", null), (fields["token"].Input, fields["token"].Value));
        Assert.Equal(("textarea", null, true), (fields["vars"].Input, fields["vars"].Value, fields["vars"].Withheld));
        Assert.Equal("web", fields["name"].Value);
        Assert.Equal("bad", fields["count"].Error);
        Assert.False(fields["force"].Checked); // posted without it: unchecked

        var fresh = LaunchForm.Fields(Typed, null, new Dictionary<string, string>()).ToDictionary(f => f.Parameter.Name);
        Assert.Equal(("number", "2"), (fresh["count"].Input, fresh["count"].Value));
        Assert.True(fresh["force"].Checked);
        Assert.Equal(("select", true), (fresh["mode"].Input, fresh["mode"].Pattern is null));
        Assert.True(fresh["name"].Required);
        Assert.Equal(63, fresh["name"].MaxLength);
    }

    [Fact]
    public void An_object_whose_redacted_copy_differs_held_secrets()
    {
        var input = new JsonObject { ["vars"] = new JsonObject { ["db_password"] = "x" }, ["name"] = "web" };
        var redacted = new JsonObject { ["vars"] = new JsonObject { ["db_password"] = "[REDACTED]" }, ["name"] = "web" };
        Assert.Equal(["vars"], LaunchForm.Withheld(input, redacted));
        Assert.Empty(LaunchForm.Withheld(input, null));
    }
}
