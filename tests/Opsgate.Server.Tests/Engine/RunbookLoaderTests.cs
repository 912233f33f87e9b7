using System.Text.Json;
using Opsgate.Server.Access;
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

    public static TheoryData<BadRunbook> BadDocuments => new()
    {
        new("unknown top-level key", """
            name: demo
            stepz: []
            steps:
              - name: a
                kind: noop
            """, 2, "unknown key 'stepz' in the runbook (allowed: name, description, parameters, options, steps)"),
        new("duplicate key", """
            name: demo
            steps:
              - name: a
                kind: noop
                kind: sleep
            """, 5, "Duplicate key"),
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

    public static TheoryData<BadRunbook> AllBadRunbooks
    {
        get
        {
            var all = new TheoryData<BadRunbook>();
            foreach (var set in new[] { BadDocuments, BadRunbooks.Parameters, BadRunbooks.StepsAndOptions })
            {
                foreach (var row in set)
                    all.Add(row);
            }
            return all;
        }
    }

    [Theory]
    [MemberData(nameof(AllBadRunbooks))]
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
