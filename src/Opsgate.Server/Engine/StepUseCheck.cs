using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Auth;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Engine;

/// <summary>
/// The submit-time check that the caller may use what a runbook's steps name (see <see cref="IStepExecutor.CheckUseAsync"/>).
/// Steps whose inputs come from an earlier step's output are not known at submit and are not checked here.
/// </summary>
internal static class StepUseCheck
{
    public static async Task<ProblemHttpResult?> CheckAsync(
        Runbook runbook, JsonObject parameters, IReadOnlyDictionary<string, IStepExecutor> executors, Principal principal, CancellationToken ct)
    {
        foreach (var step in runbook.Steps.Where(s => !Templates.UsesStepOutputs(s.With)))
        {
            var inputs = Templates.RenderObject(step.With, parameters, new Dictionary<string, JsonObject>());
            if (await executors[step.Kind].CheckUseAsync(inputs, principal, ct) is { } refusal)
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: refusal);
        }
        return null;
    }
}
