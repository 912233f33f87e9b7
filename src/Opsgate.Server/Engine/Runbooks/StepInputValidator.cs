using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Engine.Runbooks;

/// <summary>
/// Checks step inputs against what their kind declares, so a job with a bad input is refused when it is submitted,
/// not half-way through. Steps whose inputs use earlier steps' outputs can only be checked when they are about to run
/// (<see cref="ValidateRendered"/>).
/// </summary>
internal static class StepInputValidator
{
    /// <summary>Renders and checks every step that does not use step outputs.</summary>
    /// <param name="parameters">The result of <see cref="ParameterBinder.Bind"/>.</param>
    /// <exception cref="ParameterException">The field is <c>steps.STEP.INPUT</c>.</exception>
    public static void Validate(Runbook runbook, JsonObject parameters, IReadOnlyDictionary<string, IStepExecutor> executors)
    {
        var noOutputs = new Dictionary<string, JsonObject>();
        foreach (var step in runbook.Steps)
        {
            if (Templates.UsesStepOutputs(step.With))
                continue;
            JsonObject rendered;
            try
            {
                rendered = Templates.RenderObject(step.With, parameters, noOutputs);
            }
            catch (TemplateException e)
            {
                throw new ParameterException($"steps.{step.Name}", e.Message);
            }
            ValidateRendered(step.Name, executors[step.Kind], rendered);
        }
    }

    /// <summary>Checks one step's rendered inputs against its kind.</summary>
    /// <exception cref="ParameterException">The field is <c>steps.STEP.INPUT</c>.</exception>
    public static void ValidateRendered(string stepName, IStepExecutor executor, JsonObject rendered)
    {
        foreach (var (name, _) in rendered)
        {
            if (!executor.Inputs.Any(i => i.Name == name))
                throw new ParameterException($"steps.{stepName}.{name}", $"is not an input of {executor.Kind} (its inputs: {InputNames(executor)})");
        }
        foreach (var input in executor.Inputs)
        {
            if (Problem(input, rendered[input.Name]) is { } problem)
                throw new ParameterException($"steps.{stepName}.{input.Name}", problem);
        }
    }

    /// <summary>Why a value does not fit the input, or null when it does. Null values count as not given.</summary>
    public static string? Problem(StepInput input, JsonNode? value)
    {
        if (value is null)
            return input.Required ? "is required" : null;
        var kind = value.GetValueKind();
        return input.Type switch
        {
            InputType.String when kind != JsonValueKind.String => "must be a string",
            InputType.String when input.Required && value.GetValue<string>().Length == 0 => "must not be empty",
            // Executors read ints with GetValue<int>(): a JSON 5.0 or 5e0 would fail there.
            InputType.Int when kind != JsonValueKind.Number
                || !int.TryParse(value.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _) => "must be an integer",
            InputType.Bool when kind is not (JsonValueKind.True or JsonValueKind.False) => "must be true or false",
            InputType.Duration when kind != JsonValueKind.String || !Durations.TryParse(value.GetValue<string>(), out _) =>
                $"must be a duration such as {Durations.Examples}",
            InputType.Object when value is not JsonObject => "must be an object",
            InputType.Array when value is not JsonArray => "must be an array",
            _ => null,
        };
    }

    public static string InputNames(IStepExecutor executor) =>
        executor.Inputs.Count == 0 ? "none" : string.Join(", ", executor.Inputs.Select(i => i.Name));
}
