using System.Text.Json.Nodes;
using KubeSim.Patching;
using KubeSim.Store;

namespace KubeSim.Tests;

/// <summary>The patch and selector code on its own, for the directives kubectl emits.</summary>
public sealed class PatchAndSelectorTests
{
    private static JsonObject Obj(string json) => JsonNode.Parse(json)!.AsObject();

    [Fact]
    public void Strategic_merge_honours_retainKeys_setElementOrder_and_primitive_deletes()
    {
        var target = Obj("""
            {"metadata":{"finalizers":["a","b"]},
             "spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},
                     "template":{"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:1"}]}}}}
            """);
        var patch = Obj("""
            {"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]},
             "spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null},
                     "template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"a","image":"a:2"}]}}}}
            """);

        var result = StrategicMergePatch.Apply(target, patch);

        Assert.Equal("""{"type":"Recreate"}""", result.At("spec", "strategy")!.ToJsonString());
        Assert.Equal("""[{"name":"b","image":"b:1"},{"name":"a","image":"a:2"}]""", result.At("spec", "template", "spec", "containers")!.ToJsonString());
        Assert.Equal("""["b","c"]""", result.At("metadata", "finalizers")!.ToJsonString());
    }

    [Fact]
    public void Strategic_merge_replace_directive_replaces_the_list()
    {
        var target = Obj("""{"spec":{"volumes":[{"name":"x"},{"name":"y"}]}}""");
        var result = StrategicMergePatch.Apply(target, Obj("""{"spec":{"volumes":[{"$patch":"replace"},{"name":"z"}]}}"""));
        Assert.Equal("""[{"name":"z"}]""", result.At("spec", "volumes")!.ToJsonString());
    }

    [Fact]
    public void Json_merge_patch_removes_nulls_and_replaces_lists()
    {
        var result = MergePatch.Apply(Obj("""{"a":{"b":1,"c":2},"l":[1,2]}"""), Obj("""{"a":{"b":null},"l":[3]}"""));
        Assert.Equal("""{"a":{"c":2},"l":[3]}""", result!.ToJsonString());
    }

    [Fact]
    public void Json_patch_applies_operations_in_order()
    {
        var ops = JsonNode.Parse("""[{"op":"add","path":"/l/-","value":3},{"op":"remove","path":"/a"},{"op":"test","path":"/l/0","value":1}]""")!.AsArray();
        Assert.Equal("""{"l":[1,2,3]}""", JsonPatch.Apply(Obj("""{"a":1,"l":[1,2]}"""), ops).ToJsonString());
    }

    [Theory]
    [InlineData("app=web", true)]
    [InlineData("app==web,tier!=db", true)]
    [InlineData("app in (web, api),tier notin (db)", true)]
    [InlineData("app,!missing", true)]
    [InlineData("app=api", false)]
    [InlineData("missing", false)]
    public void Label_selectors_match_like_the_apiserver(string selector, bool matches)
    {
        var labels = new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" };
        Assert.Equal(matches, LabelSelector.Parse(selector).Matches(labels));
    }
}
