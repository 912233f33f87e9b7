using System.Text.Json.Nodes;
using Opsgate.Server.Access;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Engine;

/// <summary>
/// The submit-time check that the caller may use what a runbook's steps name (see <see cref="IStepExecutor.CheckUseAsync"/>).
/// Each step is checked with the inputs known at submit: an input that comes from an earlier step's output is left
/// out (it is not known yet), the others are checked, so one templated input does not exempt the whole step.
/// </summary>
internal static class StepUseCheck
{
    /// <returns>Null when the caller may, else the refusal naming the thing.</returns>
    public static async Task<string?> CheckAsync(
        Runbook runbook, JsonObject parameters, IReadOnlyDictionary<string, IStepExecutor> executors, Principal principal, CancellationToken ct)
    {
        foreach (var step in runbook.Steps)
        {
            var known = new JsonObject(step.With.Where(p => !Templates.UsesStepOutputs(p.Value))
                .Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));
            var inputs = Templates.RenderObject(known, parameters, new Dictionary<string, JsonObject>());
            if (await executors[step.Kind].CheckUseAsync(inputs, principal, ct) is { } refusal)
                return refusal;
        }
        return null;
    }
}
