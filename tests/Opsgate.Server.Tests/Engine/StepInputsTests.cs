using System.ComponentModel;
using System.Text.Json.Nodes;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;
using Opsgate.Server.Kubernetes;

namespace Opsgate.Server.Tests.Engine;

/// <summary>A step kind's inputs are one record: the schema, the target and the values a step runs with all come from it.</summary>
public sealed class StepInputsTests
{
    internal sealed record Sample(
        [ClusterTarget, Description("the cluster")] string Cluster,
        [NamespaceTarget] string Namespace,
        [Description("pods to wait for")] string? Selector,
        int? ExpectStatus,
        TimeSpan? Timeout,
        JsonObject? Headers,
        JsonNode? Body,
        bool Check = false);

    [Fact]
    public void The_schema_comes_from_the_record()
    {
        var inputs = StepInputs<Sample>.Declared;

        Assert.Equal(["cluster", "namespace", "selector", "expect_status", "timeout", "headers", "body", "check"], inputs.Select(i => i.Name));
        Assert.Equal([true, true, false, false, false, false, false, false], inputs.Select(i => i.Required));
        Assert.Equal(
            [InputType.String, InputType.String, InputType.String, InputType.Int, InputType.Duration, InputType.Object, InputType.Any, InputType.Bool],
            inputs.Select(i => i.Type));
        Assert.Equal("the cluster", inputs[0].Description);
        Assert.Equal(new StepTarget("cluster", "namespace"), StepInputs<Sample>.Target);
    }

    [Fact]
    public void Rendered_inputs_bind_with_their_types_and_defaults()
    {
        var bound = StepInputs<Sample>.Bind(new JsonObject
        {
            ["cluster"] = "c1", ["namespace"] = "prod", ["expect_status"] = 204, ["timeout"] = "90s", ["headers"] = new JsonObject { ["X-A"] = "1" },
            ["body"] = new JsonArray(1, 2),
        });

        Assert.Equal(("c1", "prod", (string?)null, (int?)204, (TimeSpan?)TimeSpan.FromSeconds(90), false),
            (bound.Cluster, bound.Namespace, bound.Selector, bound.ExpectStatus, bound.Timeout, bound.Check));
        Assert.Equal("1", bound.Headers!["X-A"]!.GetValue<string>());
        Assert.Equal("[1,2]", bound.Body!.ToJsonString());
    }

    [Fact]
    public void A_missing_required_input_or_a_bad_value_fails_the_step_naming_the_input()
    {
        var missing = Assert.Throws<StepFailedException>(() => StepInputs<Sample>.Bind(new JsonObject { ["cluster"] = "c1" }));
        Assert.Equal("input 'namespace' is required", missing.Message);

        var bad = Assert.Throws<StepFailedException>(() => StepInputs<Sample>.Bind(new JsonObject { ["cluster"] = "c1", ["namespace"] = "n", ["timeout"] = "soon" }));
        Assert.StartsWith("input 'timeout': 'soon' is not a duration", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Built_in_kinds_keep_their_inputs()
    {
        Assert.Equal(["url", "method", "headers", "body", "expect_status"], StepInputs<HttpCallStep.With>.Declared.Select(i => i.Name));
        Assert.Equal(new StepTarget("cluster", "namespace"), StepInputs<KubeWaitStep.With>.Target);
        Assert.Null(StepInputs<SleepStep.With>.Target);
        Assert.Equal(InputType.Duration, Assert.Single(StepInputs<SleepStep.With>.Declared).Type);
        // Attribute text cannot embed the limits the step enforces: the descriptions must name the same ones.
        var ansible = StepInputs<Opsgate.Server.Ansible.AnsibleRunStep.With>.Declared.ToDictionary(i => i.Name, i => i.Description);
        Assert.Contains($"1..{Opsgate.Server.Ansible.AnsibleRunStep.MaxForks}", ansible["forks"], StringComparison.Ordinal);
        Assert.Contains($"1..{Opsgate.Server.Ansible.Sharding.MaxShards}", ansible["shards"], StringComparison.Ordinal);
    }
}
