using System.Text.Json;
using Opsgate.Server.Auth;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Tests.Engine;

/// <summary>A runbook the loader must refuse, the line it must name, and words the message must hold.</summary>
public sealed record BadRunbook(string Name, string Yaml, int Line, string Expected)
{
    public override string ToString() => Name;
}

public sealed class RunbookLoaderTests
{
    private const string Source = "runbooks/demo.yaml";

    private static Runbook Load(string yaml) => RunbookLoader.Load(yaml, Source, FakeExecutors.ByKind);

    // Every case is a small runbook that would load but for the one line named.
    public static TheoryData<BadRunbook> BadRunbooks => new()
    {
        new("unknown top-level key", """
            name: demo
            stepz: []
            steps:
              - name: a
                kind: noop
            """, 2, "unknown key 'stepz' in the runbook (allowed: name, description, parameters, options, steps)"),
        new("unknown parameter key", """
            name: demo
            parameters:
              - name: ns
                type: string
                requird: true
            steps:
              - name: a
                kind: noop
            """, 5, "unknown key 'requird' in a parameter"),
        new("unknown step key", """
            name: demo
            steps:
              - name: a
                kind: noop
                retries: 3
            """, 5, "unknown key 'retries' in a step (allowed: name, kind, with, attempts, backoff, timeout)"),
        new("unknown option key", """
            name: demo
            options:
              timeout: 5m
              parallel: 2
            steps:
              - name: a
                kind: noop
            """, 4, "unknown key 'parallel' in options"),
        new("unknown step kind", """
            name: demo
            steps:
              - name: a
                kind: noop
              - name: b
                kind: k8s.scael
            """, 6, "step 'b' has an unknown kind 'k8s.scael' (known kinds: http.call, k8s.delete, k8s.restart, k8s.scale, k8s.wait, noop, notify.webhook, sleep)"),
        new("input the kind does not declare", """
            name: demo
            steps:
              - name: a
                kind: k8s.restart
                with:
                  cluster: c
                  namespace: n
                  name: web
                  replicas: 2
            """, 9, "k8s.restart takes no input 'replicas' (its inputs: cluster, namespace, name)"),
        new("required input missing", """
            name: demo
            steps:
              - name: a
                kind: k8s.delete
                with:
                  cluster: c
                  namespace: n
                  name: web
            """, 6, "step 'a' (k8s.delete) needs input 'kind'"),
        new("required input missing and no with at all", """
            name: demo
            steps:
              - name: nap
                kind: sleep
            """, 3, "step 'nap' (sleep) needs input 'duration'"),
        new("template naming an unknown parameter", """
            name: demo
            parameters:
              - name: ns
                type: string
            steps:
              - name: a
                kind: k8s.restart
                with:
                  cluster: c
                  namespace: "{{ params.ns }}"
                  name: "web-{{ params.app }}"
            """, 11, "{{ params.app }} names an unknown parameter 'app' (parameters: ns)"),
        new("template naming a later step", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: "{{ steps.b.outputs.id }}"
              - name: b
                kind: noop
            """, 6, "{{ steps.b.outputs.id }} must name an earlier step: step 'b' runs after 'a'"),
        new("template naming the step itself", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: "{{ steps.a.outputs.id }}"
            """, 6, "a step cannot use its own outputs"),
        new("template naming no step", """
            name: demo
            steps:
              - name: a
                kind: noop
              - name: b
                kind: http.call
                with:
                  url: http://x
                  headers:
                    X-Id: "{{ steps.c.outputs.id }}"
            """, 10, "{{ steps.c.outputs.id }} must name an earlier step: there is no step 'c'"),
        new("malformed template", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: "{{ params }}"
            """, 6, "'{{ params }}' is not a template expression"),
        new("duplicate parameter", """
            name: demo
            parameters:
              - name: ns
                type: string
              - name: ns
                type: int
            steps:
              - name: a
                kind: noop
            """, 5, "parameter 'ns' is declared twice"),
        new("duplicate step", """
            name: demo
            steps:
              - name: a
                kind: noop
              - name: a
                kind: noop
            """, 5, "step name 'a' is used twice"),
        new("duplicate key", """
            name: demo
            steps:
              - name: a
                kind: noop
                kind: sleep
            """, 5, "Duplicate key"),
        new("int default that is text", """
            name: demo
            parameters:
              - name: n
                type: int
                default: three
            steps:
              - name: a
                kind: noop
            """, 5, "default of parameter 'n' must be an integer"),
        new("int default out of range", """
            name: demo
            parameters:
              - name: n
                type: int
                min: 1
                max: 5
                default: 7
            steps:
              - name: a
                kind: noop
            """, 7, "default of parameter 'n' must be an integer between 1 and 5"),
        new("string default that is a number", """
            name: demo
            parameters:
              - name: s
                type: string
                default: 5
            steps:
              - name: a
                kind: noop
            """, 5, "default of parameter 's' must be a string (quote it)"),
        new("bool default that is text", """
            name: demo
            parameters:
              - name: b
                type: bool
                default: "yes"
            steps:
              - name: a
                kind: noop
            """, 5, "default of parameter 'b' must be true or false"),
        new("enum default not among the values", """
            name: demo
            parameters:
              - name: e
                type: enum
                values: [a, b]
                default: c
            steps:
              - name: a
                kind: noop
            """, 6, "default of parameter 'e' must be one of a, b"),
        new("default breaking the pattern", """
            name: demo
            parameters:
              - name: ns
                type: string
                pattern: dns-label
                default: Prod
            steps:
              - name: a
                kind: noop
            """, 6, "default of parameter 'ns' must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"),
        new("required with a default", """
            name: demo
            parameters:
              - name: ns
                type: string
                required: true
                default: prod
            steps:
              - name: a
                kind: noop
            """, 6, "parameter 'ns' is required, so it cannot have a default"),
        new("unknown parameter type", """
            name: demo
            parameters:
              - name: ns
                type: text
            steps:
              - name: a
                kind: noop
            """, 4, "type of parameter 'ns' must be string, int, bool or enum, not 'text'"),
        new("parameter name with capitals", """
            name: demo
            parameters:
              - name: Namespace
                type: string
            steps:
              - name: a
                kind: noop
            """, 3, "parameter name 'Namespace' must be lower-case letters, digits and '_'"),
        new("pattern on an int", """
            name: demo
            parameters:
              - name: n
                type: int
                pattern: dns-label
            steps:
              - name: a
                kind: noop
            """, 5, "pattern applies to string parameters only, and parameter 'n' is int"),
        new("invalid regex", """
            name: demo
            parameters:
              - name: s
                type: string
                pattern: "[a-z"
            steps:
              - name: a
                kind: noop
            """, 5, "pattern is not dns-label, dns-subdomain or a valid regular expression: Invalid pattern '[a-z' at offset 4"),
        new("min above max", """
            name: demo
            parameters:
              - name: n
                type: int
                min: 5
                max: 1
            steps:
              - name: a
                kind: noop
            """, 6, "max (1) of parameter 'n' is below its min (5)"),
        new("enum without values", """
            name: demo
            parameters:
              - name: e
                type: enum
            steps:
              - name: a
                kind: noop
            """, 3, "enum parameter 'e' needs values"),
        new("values on a string", """
            name: demo
            parameters:
              - name: s
                type: string
                values: [a]
            steps:
              - name: a
                kind: noop
            """, 5, "values applies to enum parameters only"),
        new("bad step timeout", """
            name: demo
            steps:
              - name: a
                kind: noop
                timeout: 5 minutes
            """, 5, "timeout must be a positive duration such as 250ms, 30s, 5m, 1h30m or 00:05:00, not '5 minutes'"),
        new("zero step timeout", """
            name: demo
            steps:
              - name: a
                kind: noop
                timeout: 0s
            """, 5, "timeout must be a positive duration"),
        new("bad backoff", """
            name: demo
            steps:
              - name: a
                kind: noop
                backoff: soon
            """, 5, "backoff must be a duration such as"),
        new("attempts zero", """
            name: demo
            steps:
              - name: a
                kind: noop
                attempts: 0
            """, 5, "attempts must be an integer between 1 and 100"),
        new("bad runbook timeout", """
            name: demo
            options:
              timeout: 30
            steps:
              - name: a
                kind: noop
            """, 3, "timeout must be a positive duration such as 250ms, 30s, 5m, 1h30m or 00:05:00, not '30'"),
        new("bad approval timeout", """
            name: demo
            options:
              requires_approval: true
              approval_timeout: tomorrow
            steps:
              - name: a
                kind: noop
            """, 4, "approval_timeout must be a positive duration"),
        new("bad role", """
            name: demo
            options:
              requires_approval: true
              approvers_role: boss
            steps:
              - name: a
                kind: noop
            """, 4, "approvers_role must be one of viewer, operator, approver, admin, not 'boss'"),
        new("approval settings without approval", """
            name: demo
            options:
              approvers_role: admin
            steps:
              - name: a
                kind: noop
            """, 3, "approvers_role has no effect without requires_approval: true"),
        new("requires_approval that is not a bool", """
            name: demo
            options:
              requires_approval: sometimes
            steps:
              - name: a
                kind: noop
            """, 3, "requires_approval must be true or false"),
        new("concurrency key using step outputs", """
            name: demo
            options:
              concurrency_key: "x/{{ steps.a.outputs.id }}"
            steps:
              - name: a
                kind: noop
            """, 3, "concurrency_key cannot use {{ steps.a.outputs.id }}"),
        new("concurrency key naming an unknown parameter", """
            name: demo
            options:
              concurrency_key: "{{ params.cluster }}/x"
            steps:
              - name: a
                kind: noop
            """, 3, "{{ params.cluster }} names an unknown parameter 'cluster' (the runbook has none)"),
        new("literal input of the wrong type", """
            name: demo
            steps:
              - name: a
                kind: k8s.scale
                with:
                  cluster: c
                  namespace: n
                  kind: statefulset
                  name: pg
                  replicas: many
            """, 10, "input 'replicas' of step 'a' must be an integer"),
        new("literal duration input that is not one", """
            name: demo
            steps:
              - name: a
                kind: sleep
                with:
                  duration: 10
            """, 6, "input 'duration' of step 'a' must be a duration"),
        new("literal null for a required input", """
            name: demo
            steps:
              - name: a
                kind: sleep
                with:
                  duration:
            """, 6, "input 'duration' of step 'a' is required"),
        new("name that is not a DNS label", """
            name: PG_Rebuild
            steps:
              - name: a
                kind: noop
            """, 1, "name 'PG_Rebuild' must be a DNS-1123 label"),
        new("no name", """
            description: nameless
            steps:
              - name: a
                kind: noop
            """, 1, "a runbook needs 'name'"),
        new("no steps", """
            name: demo
            """, 1, "a runbook needs 'steps'"),
        new("empty steps", """
            name: demo
            steps: []
            """, 2, "steps must list at least one step"),
        new("step without kind", """
            name: demo
            steps:
              - name: a
                with: {}
            """, 3, "step 'a' needs 'kind'"),
        new("steps that are not a list", """
            name: demo
            steps:
              a: noop
            """, 3, "steps must be a list"),
        new("invalid YAML", """
            name: demo
            steps:
              - name: a
               kind: noop
            """, 4, "not valid YAML"),
        new("alias", """
            name: demo
            parameters:
              - &p
                name: a
                type: string
              - *p
            steps:
              - name: a
                kind: noop
            """, 6, "YAML aliases (*p) are not supported"),
        new("second document", """
            name: demo
            steps:
              - name: a
                kind: noop
            ---
            name: other
            """, 6, "holds more than one YAML document"),
        new("a list instead of a mapping", """
            - name: demo
            """, 1, "must be a mapping with name, parameters, options and steps"),
        new("YAML tag", """
            name: demo
            steps:
              - name: a
                kind: noop
                with:
                  message: !!binary aGk=
            """, 6, "YAML tags such as"),
        new("deep nesting", "name: demo\nsteps:\n  - name: a\n    kind: http.call\n    with:\n      url: u\n      body: "
            + new string('[', 40) + new string(']', 40) + "\n", 7, "nested deeper than 32 levels"),
    };

    [Theory]
    [MemberData(nameof(BadRunbooks))]
    public void A_bad_runbook_is_refused_with_its_source_and_line(BadRunbook bad)
    {
        var e = Assert.Throws<RunbookException>(() => Load(bad.Yaml));

        Assert.StartsWith($"{Source} line {bad.Line}: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(bad.Expected, e.Message, StringComparison.Ordinal);
        if (!bad.Expected.Contains("(quote it)", StringComparison.Ordinal))
            Assert.DoesNotContain("(quote it)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_or_oversized_file_is_refused()
    {
        var empty = Assert.Throws<RunbookException>(() => Load(""));
        var huge = Assert.Throws<RunbookException>(() => Load("name: demo\ndescription: " + new string('x', 300 * 1024) + "\n"));

        Assert.Equal($"{Source} line 1: is empty: a runbook needs at least a name and steps", empty.Message);
        Assert.Equal($"{Source}: is larger than 256 KiB", huge.Message);
    }

    [Fact]
    public void A_full_runbook_loads_with_every_setting()
    {
        var runbook = Load("""
            name: restart-web
            description: Restart the web tier and tell the channel.
            parameters:
              - name: namespace
                type: string
                required: true
                pattern: dns-label
                description: Where the web tier runs.
              - name: mode
                type: enum
                values: [rolling, all]
                default: rolling
              - name: replicas
                type: int
                min: 1
                max: 10
                default: 3
              - name: notify
                type: bool
                default: true
            options:
              requires_approval: true
              approvers_role: admin
              timeout: 1h30m
              approval_timeout: 24h
              concurrency_key: "web/{{ params.namespace }}"
            steps:
              - name: restart
                kind: k8s.restart
                with:
                  cluster: default
                  namespace: "{{ params.namespace }}"
                  name: web
                attempts: 3
                backoff: 2s
                timeout: 00:05:00
              - name: tell
                kind: notify.webhook
                with:
                  url: https://chat.example.com/hook
                  format: slack
                  message: "restarted web in {{ params.namespace }} ({{ steps.restart.outputs.pods }} pods)"
            """);

        Assert.Equal("restart-web", runbook.Name);
        Assert.Equal("Restart the web tier and tell the channel.", runbook.Description);
        Assert.Equal(Source, runbook.Source);
        Assert.Equal(["namespace", "mode", "replicas", "notify"], runbook.Parameters.Select(p => p.Name));
        var ns = runbook.Parameters[0];
        Assert.Equal((ParameterType.String, true, "dns-label", "Where the web tier runs."), (ns.Type, ns.Required, ns.Pattern, ns.Description));
        Assert.Equal(["rolling", "all"], runbook.Parameters[1].Values!);
        Assert.Equal("rolling", runbook.Parameters[1].Default!.GetValue<string>());
        Assert.Equal((1L, 10L, 3), (runbook.Parameters[2].Min!.Value, runbook.Parameters[2].Max!.Value, runbook.Parameters[2].Default!.GetValue<int>()));
        Assert.Equal(JsonValueKind.True, runbook.Parameters[3].Default!.GetValueKind());
        Assert.Equal(
            new RunbookOptions(true, Role.Admin, TimeSpan.FromMinutes(90), "web/{{ params.namespace }}", TimeSpan.FromHours(24)),
            runbook.Options);
        var restart = runbook.Steps[0];
        Assert.Equal(("restart", "k8s.restart", 3, TimeSpan.FromSeconds(2), (TimeSpan?)TimeSpan.FromMinutes(5)),
            (restart.Name, restart.Kind, restart.Attempts, restart.Backoff, restart.Timeout));
        Assert.Equal("""{"cluster":"default","namespace":"{{ params.namespace }}","name":"web"}""", restart.With.ToJsonString());
        var tell = runbook.Steps[1];
        Assert.Equal((1, TimeSpan.FromSeconds(1), (TimeSpan?)null), (tell.Attempts, tell.Backoff, tell.Timeout));
    }

    [Fact]
    public void Plain_yaml_scalars_become_typed_json_and_quoted_ones_stay_strings()
    {
        var runbook = Load("""
            name: demo
            steps:
              - name: call
                kind: http.call
                with:
                  url: "http://x"
                  body:
                    n: 5
                    f: 1.5
                    whole: 2.0
                    t: true
                    nothing: ~
                    quoted: "5"
                    text: hello
                    list: [1, "2", -3]
                    block: |
                      two
                      lines
                  expect_status: 204
            """);

        Assert.Equal(
            """{"url":"http://x","body":{"n":5,"f":1.5,"whole":2.0,"t":true,"nothing":null,"quoted":"5","text":"hello","list":[1,"2",-3],"block":"two\nlines\n"},"expect_status":204}""",
            runbook.Steps[0].With.ToJsonString());
        Assert.Equal(204, runbook.Steps[0].With["expect_status"]!.GetValue<int>());
    }

    [Fact]
    public void Options_default_to_no_approval_by_approvers_no_timeout_and_no_key()
    {
        var runbook = Load("""
            name: demo
            steps:
              - name: a
                kind: noop
            """);

        Assert.Equal(new RunbookOptions(false, Role.Approver, null, null, null), runbook.Options);
        Assert.Empty(runbook.Parameters);
        Assert.Null(runbook.Description);
        Assert.Equal("{}", runbook.Steps[0].With.ToJsonString());
    }

    [Fact]
    public void Pg_rebuild_is_the_five_apiops_steps()
    {
        var runbook = ParameterBinderTests.BuiltIn("pg-rebuild");

        Assert.Equal(
            [("scale_sts_to_zero", "k8s.scale"), ("wait_pods_down", "k8s.wait"), ("delete_pvc", "k8s.delete"), ("scale_sts_to_target", "k8s.scale"), ("wait_pods_ready", "k8s.wait")],
            runbook.Steps.Select(s => (s.Name, s.Kind)));
        Assert.Equal(0, runbook.Steps[0].With["replicas"]!.GetValue<int>());
        Assert.Equal("gone", runbook.Steps[1].With["condition"]!.GetValue<string>());
        Assert.Equal("ready", runbook.Steps[4].With["condition"]!.GetValue<string>());
        Assert.Equal(["cluster", "namespace", "statefulset", "ordinal", "target_replicas", "pvc_template"], runbook.Parameters.Select(p => p.Name));
        Assert.Equal("{{ params.cluster }}/{{ params.namespace }}/statefulset/{{ params.statefulset }}", runbook.Options.ConcurrencyKey);
        Assert.Equal(TimeSpan.FromMinutes(30), runbook.Options.Timeout);
        Assert.Equal("built-in/pg-rebuild.yaml", runbook.Source);
    }
}
