using System.ComponentModel;
using System.Reflection;
using System.Text.Json.Nodes;
using Opsgate.Server.Access;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Engine.Steps;

/// <summary>The input that names the cluster a step acts on (see <see cref="IStepExecutor.Target"/>).</summary>
[AttributeUsage(AttributeTargets.Parameter)]
internal sealed class ClusterTargetAttribute : Attribute;

/// <summary>The input that names the namespace a step acts on (see <see cref="IStepExecutor.Target"/>).</summary>
[AttributeUsage(AttributeTargets.Parameter)]
internal sealed class NamespaceTargetAttribute : Attribute;

/// <summary>
/// A step kind whose inputs are one record, <typeparamref name="TInputs"/>: its constructor's parameters are the inputs
/// (snake_case names, <see cref="DescriptionAttribute"/> for the schema; nullable or defaulted ones are optional), so
/// the runbook schema, the load-time checks and the values the step runs with all come from one declaration.
/// </summary>
internal abstract class StepExecutor<TInputs> : IStepExecutor where TInputs : class
{
    public abstract string Kind { get; }

    public abstract string Description { get; }

    public IReadOnlyList<StepInput> Inputs => StepInputs<TInputs>.Declared;

    public StepTarget? Target => StepInputs<TInputs>.Target;

    public virtual Task<(string Input, string Message)?> CheckReferencesAsync(JsonObject inputs, CancellationToken ct) => Task.FromResult<(string, string)?>(null);

    public virtual Task<string?> CheckUseAsync(JsonObject inputs, Principal principal, CancellationToken ct) => Task.FromResult<string?>(null);

    public virtual string? NotResumable(JsonObject inputs) => null;

    public virtual bool RecordsItself => false;

    public virtual bool StartsChildJobs => false;

    public Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken) =>
        ExecuteAsync(context, StepInputs<TInputs>.Bind(context.Inputs), cancellationToken);

    /// <summary>Runs the step with its inputs bound. In a dry run it must change nothing and return what it would do.</summary>
    protected abstract Task<StepOutcome> ExecuteAsync(StepContext context, TInputs inputs, CancellationToken cancellationToken);
}

/// <summary>The inputs declared by a record's constructor, and binding rendered inputs to it.</summary>
internal static class StepInputs<TInputs> where TInputs : class
{
    private static readonly ConstructorInfo Constructor = typeof(TInputs).GetConstructors().Single();
    private static readonly ParameterInfo[] Parameters = Constructor.GetParameters();
    private static readonly bool[] Optional = OptionalParameters();

    public static IReadOnlyList<StepInput> Declared { get; } = [.. Parameters.Select((p, i) => new StepInput(
        Name(p), Type(p.ParameterType), !Optional[i], p.GetCustomAttribute<DescriptionAttribute>()?.Description ?? ""))];

    public static StepTarget? Target { get; } =
        Parameters.FirstOrDefault(p => p.IsDefined(typeof(ClusterTargetAttribute))) is { } cluster
        && Parameters.FirstOrDefault(p => p.IsDefined(typeof(NamespaceTargetAttribute))) is { } ns
            ? new StepTarget(Name(cluster), Name(ns))
            : null;

    /// <summary>
    /// The record for a step's rendered inputs. Their types were checked at submit (<see cref="StepInputValidator"/>);
    /// a required input that is missing, or a value that does not convert, fails the step with the input's name.
    /// </summary>
    public static TInputs Bind(JsonObject inputs)
    {
        var values = new object?[Parameters.Length];
        for (var i = 0; i < Parameters.Length; i++)
        {
            var p = Parameters[i];
            var name = Name(p);
            var node = inputs[name];
            if (node is null)
            {
                values[i] = p.HasDefaultValue ? p.DefaultValue : !Optional[i] ? throw new StepFailedException($"input '{name}' is required") : null;
                continue;
            }
            try
            {
                values[i] = Convert(node, Nullable.GetUnderlyingType(p.ParameterType) ?? p.ParameterType);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                throw new StepFailedException($"input '{name}': {e.Message}");
            }
        }
        return (TInputs)Constructor.Invoke(values);
    }

    private static object? Convert(JsonNode node, Type type) =>
        type == typeof(string) ? node.GetValue<string>()
        : type == typeof(int) ? node.GetValue<int>()
        : type == typeof(bool) ? node.GetValue<bool>()
        : type == typeof(TimeSpan) ? Durations.Parse(node.GetValue<string>())
        : type == typeof(JsonObject) ? node.AsObject()
        : type == typeof(JsonArray) ? node.AsArray()
        : type == typeof(JsonNode) ? node
        : throw new InvalidOperationException($"{typeof(TInputs).Name} has an input of a type steps cannot take: {type.Name}");

    private static InputType Type(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(string) => InputType.String,
        var t when t == typeof(int) => InputType.Int,
        var t when t == typeof(bool) => InputType.Bool,
        var t when t == typeof(TimeSpan) => InputType.Duration,
        var t when t == typeof(JsonObject) => InputType.Object,
        var t when t == typeof(JsonArray) => InputType.Array,
        var t when t == typeof(JsonNode) => InputType.Any,
        var t => throw new InvalidOperationException($"{typeof(TInputs).Name} has an input of a type steps cannot take: {t.Name}"),
    };

    /// <summary>Nullable or defaulted parameters (read once: <see cref="NullabilityInfoContext"/> is not thread-safe).</summary>
    private static bool[] OptionalParameters()
    {
        var nullability = new NullabilityInfoContext();
        return [.. Parameters.Select(p => p.HasDefaultValue || Nullable.GetUnderlyingType(p.ParameterType) is not null
            || nullability.Create(p).WriteState == NullabilityState.Nullable)];
    }

    /// <summary><c>ExpectStatus</c> is <c>expect_status</c>.</summary>
    private static string Name(ParameterInfo p) =>
        string.Concat(p.Name!.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));
}
