using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Opsgate.Server.Engine;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Tests.Engine;

public sealed class ParameterBinderTests
{
    private static readonly Runbook PgRebuild = BuiltIn("pg-rebuild");

    private static readonly Runbook Typed = RunbookLoader.Load("""
        name: typed
        parameters:
          - name: mode
            type: enum
            values: [fast, safe]
            default: safe
          - name: force
            type: bool
            default: false
          - name: ticket
            type: string
            pattern: "[A-Z]+-[0-9]+"
          - name: host
            type: string
            pattern: dns-subdomain
          - name: wait
            type: string
          - name: count
            type: int
        steps:
          - name: pause
            kind: sleep
            with:
              duration: "{{ params.wait }}"
          - name: scale
            kind: k8s.scale
            with:
              cluster: default
              namespace: ns
              kind: deployment
              name: "{{ params.host }}"
              replicas: "{{ params.count }}"
          - name: say
            kind: noop
            with:
              message: "{{ params.ticket }}"
          - name: call
            kind: http.call
            with:
              url: "https://example.com/{{ steps.say.outputs.id }}"
              expect_status: "{{ params.count }}"
        """, "typed.yaml", FakeExecutors.ByKind);

    internal static Runbook BuiltIn(string name)
    {
        var catalog = new RunbookCatalog(FakeExecutors.List, Options.Create(new JobsOptions()), NullLogger<RunbookCatalog>.Instance);
        return catalog.Find(name) ?? throw new InvalidOperationException($"no built-in runbook {name}");
    }

    private static JsonObject Input(string json) => (JsonObject)JsonNode.Parse(json)!;

    private static ParameterException Refused(Runbook runbook, string json) =>
        Assert.Throws<ParameterException>(() => ParameterBinder.Bind(runbook, Input(json)));

    [Fact]
    public void Pg_rebuild_binds_the_apiops_example_to_the_full_parameter_set_and_renders_its_steps()
    {
        var bound = ParameterBinder.Bind(PgRebuild, Input("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 0}"""));

        Assert.Equal(
            """{"cluster":"default","namespace":"prod","statefulset":"postgres","ordinal":0,"target_replicas":1,"pvc_template":"data"}""",
            bound.ToJsonString());
        var noOutputs = new Dictionary<string, JsonObject>();
        var deletePvc = Templates.RenderObject(PgRebuild.Steps[2].With, bound, noOutputs);
        var scaleUp = Templates.RenderObject(PgRebuild.Steps[3].With, bound, noOutputs);
        Assert.Equal("delete_pvc", PgRebuild.Steps[2].Name);
        Assert.Equal("data-postgres-0", deletePvc["name"]!.GetValue<string>());
        Assert.Equal("persistentvolumeclaim", deletePvc["kind"]!.GetValue<string>());
        Assert.Equal("scale_sts_to_target", PgRebuild.Steps[3].Name);
        Assert.Equal(JsonValueKind.Number, scaleUp["replicas"]!.GetValueKind());
        Assert.Equal(1, scaleUp["replicas"]!.GetValue<int>());
        Assert.Equal("default/prod/statefulset/postgres", Templates.Render(PgRebuild.Options.ConcurrencyKey, bound, noOutputs)!.GetValue<string>());
        StepInputValidator.Validate(PgRebuild, bound, FakeExecutors.ByKind);
    }

    [Fact]
    public void Given_values_replace_defaults_and_an_explicit_null_takes_the_default()
    {
        var bound = ParameterBinder.Bind(PgRebuild, Input(
            """{"cluster": "east", "namespace": "prod", "statefulset": "pg", "ordinal": 2, "target_replicas": null, "pvc_template": "pgdata"}"""));

        Assert.Equal("east", bound["cluster"]!.GetValue<string>());
        Assert.Equal(2, bound["ordinal"]!.GetValue<int>());
        Assert.Equal(1, bound["target_replicas"]!.GetValue<int>());
        Assert.Equal("pgdata-pg-2", Templates.RenderObject(PgRebuild.Steps[2].With, bound, new Dictionary<string, JsonObject>())["name"]!.GetValue<string>());
    }

    [Fact]
    public void Optional_parameters_without_a_default_are_present_as_null()
    {
        var bound = ParameterBinder.Bind(BuiltIn("noop"), null);

        Assert.Equal("""{"message":null}""", bound.ToJsonString());
        var rendered = Templates.RenderObject(BuiltIn("noop").Steps[0].With, bound, new Dictionary<string, JsonObject>());
        Assert.Null(rendered["message"]);
    }

    [Theory]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 0, "replicas": 2}""", "params.replicas",
        "is not a parameter of runbook pg-rebuild (its parameters: cluster, namespace, statefulset, ordinal, target_replicas, pvc_template)")]
    [InlineData("""{"statefulset": "postgres", "ordinal": 0}""", "params.namespace", "is required")]
    [InlineData("""{"namespace": null, "statefulset": "postgres", "ordinal": 0}""", "params.namespace", "is required")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres"}""", "params.ordinal", "is required")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": "0"}""", "params.ordinal", "must be an integer of at least 0")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 1.5}""", "params.ordinal", "must be an integer of at least 0")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 1.0}""", "params.ordinal", "must be an integer of at least 0")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": -1}""", "params.ordinal", "must be an integer of at least 0")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 0, "target_replicas": 0}""", "params.target_replicas", "must be an integer between 1 and 100")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 0, "target_replicas": 101}""", "params.target_replicas", "must be an integer between 1 and 100")]
    [InlineData("""{"namespace": "prod", "statefulset": "postgres", "ordinal": 99999999999999999999}""", "params.ordinal", "must be an integer of at least 0")]
    [InlineData("""{"namespace": "Prod", "statefulset": "postgres", "ordinal": 0}""", "params.namespace", Validate.DnsLabelRule)]
    [InlineData("""{"namespace": "prod", "statefulset": "pg.main", "ordinal": 0}""", "params.statefulset", Validate.DnsLabelRule)]
    [InlineData("""{"namespace": 5, "statefulset": "postgres", "ordinal": 0}""", "params.namespace", "must be a string")]
    [InlineData("""{"namespace": "", "statefulset": "postgres", "ordinal": 0}""", "params.namespace", "must not be empty")]
    public void Pg_rebuild_refuses_bad_parameters_naming_the_field(string json, string field, string message)
    {
        var e = Refused(PgRebuild, json);

        Assert.Equal(field, e.Field);
        Assert.Equal(message, e.Message);
    }

    [Theory]
    [InlineData("""{"mode": "slow"}""", "params.mode", "must be one of fast, safe")]
    [InlineData("""{"mode": 1}""", "params.mode", "must be one of fast, safe")]
    [InlineData("""{"force": "true"}""", "params.force", "must be true or false")]
    [InlineData("""{"force": 1}""", "params.force", "must be true or false")]
    [InlineData("""{"ticket": "ops-12"}""", "params.ticket", "must match [A-Z]+-[0-9]+")]
    [InlineData("""{"ticket": "OPS-12; rm -rf /"}""", "params.ticket", "must match [A-Z]+-[0-9]+")]
    [InlineData("""{"host": "db_1.example.com"}""", "params.host", Validate.DnsSubdomainRule)]
    [InlineData("""{"count": true}""", "params.count", "must be an integer")]
    public void Typed_parameters_refuse_values_of_the_wrong_kind(string json, string field, string message)
    {
        var e = Refused(Typed, json);

        Assert.Equal(field, e.Field);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Enum_bool_pattern_and_subdomain_values_that_fit_are_kept_with_their_types()
    {
        var bound = ParameterBinder.Bind(Typed, Input("""{"mode": "fast", "force": true, "ticket": "OPS-12", "host": "db-1.example.com", "count": 2}"""));

        Assert.Equal("fast", bound["mode"]!.GetValue<string>());
        Assert.True(bound["force"]!.GetValue<bool>());
        Assert.Equal("OPS-12", bound["ticket"]!.GetValue<string>());
        Assert.Equal("db-1.example.com", bound["host"]!.GetValue<string>());
        Assert.Equal(2, bound["count"]!.GetValue<int>());
        Assert.Null(bound["wait"]);
    }

    [Fact]
    public void Parameters_built_in_code_bind_like_parsed_ones()
    {
        var bound = ParameterBinder.Bind(PgRebuild, new JsonObject { ["namespace"] = "prod", ["statefulset"] = "postgres", ["ordinal"] = 3 });

        Assert.Equal(3L, bound["ordinal"]!.GetValue<long>());
        Assert.Equal(JsonValueKind.Number, bound["ordinal"]!.GetValueKind());
    }

    [Theory]
    [InlineData("""{"wait": "soon", "host": "h", "count": 1, "ticket": "A-1"}""", "steps.pause.duration", "must be a duration such as 250ms, 30s, 5m, 1h30m or 00:05:00")]
    [InlineData("""{"host": "h", "count": 1, "ticket": "A-1"}""", "steps.pause.duration", "is required")]
    [InlineData("""{"wait": "5s", "count": 1, "ticket": "A-1"}""", "steps.scale.name", "is required")]
    [InlineData("""{"wait": "5s", "host": "h", "ticket": "A-1"}""", "steps.scale.replicas", "is required")]
    public void Step_inputs_are_checked_after_binding_naming_the_step_and_input(string json, string field, string message)
    {
        var bound = ParameterBinder.Bind(Typed, Input(json));

        var e = Assert.Throws<ParameterException>(() => StepInputValidator.Validate(Typed, bound, FakeExecutors.ByKind));

        Assert.Equal(field, e.Field);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Steps_using_step_outputs_are_left_for_run_time_and_checked_there()
    {
        var bound = ParameterBinder.Bind(Typed, Input("""{"wait": "5s", "host": "h", "count": 1, "ticket": "A-1"}"""));
        StepInputValidator.Validate(Typed, bound, FakeExecutors.ByKind);

        var call = Typed.Steps[3];
        Assert.True(Templates.UsesStepOutputs(call.With));
        var rendered = Templates.RenderObject(call.With, bound, new Dictionary<string, JsonObject> { ["say"] = new() { ["id"] = 42 } });
        Assert.Equal("https://example.com/42", rendered["url"]!.GetValue<string>());
        StepInputValidator.ValidateRendered(call.Name, FakeExecutors.ByKind[call.Kind], rendered);

        rendered["expect_status"] = "ok";
        var e = Assert.Throws<ParameterException>(() => StepInputValidator.ValidateRendered(call.Name, FakeExecutors.ByKind[call.Kind], rendered));
        Assert.Equal("steps.call.expect_status", e.Field);
        Assert.Equal("must be an integer", e.Message);
    }

    [Fact]
    public void An_int_input_refuses_a_number_that_does_not_fit_an_int()
    {
        var bound = ParameterBinder.Bind(Typed, Input("""{"wait": "5s", "host": "h", "count": 3000000000, "ticket": "A-1"}"""));

        var e = Assert.Throws<ParameterException>(() => StepInputValidator.Validate(Typed, bound, FakeExecutors.ByKind));

        Assert.Equal("steps.scale.replicas", e.Field);
        Assert.Equal("must be an integer", e.Message);
    }
}
