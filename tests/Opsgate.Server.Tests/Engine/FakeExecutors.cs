using Opsgate.Server.Engine.Steps;

namespace Opsgate.Server.Tests.Engine;

/// <summary>Step kinds declaring the same inputs as the real executors, so runbooks are checked as they will be in production.</summary>
internal static class FakeExecutors
{
    public static IReadOnlyList<IStepExecutor> List { get; } =
    [
        new Fake("k8s.scale",
            Req("cluster"), Req("namespace"), Req("kind"), Req("name"), new StepInput("replicas", InputType.Int, true, "replicas to scale to")),
        new Fake("k8s.wait",
            Req("cluster"), Req("namespace"), Opt("selector"), Opt("kind"), Opt("name"), Req("condition"),
            new StepInput("count", InputType.Int, false, "Ready pods to wait for"),
            new StepInput("timeout", InputType.Duration, false, "how long to wait"),
            new StepInput("interval", InputType.Duration, false, "how often to look")),
        new Fake("k8s.delete", Req("cluster"), Req("namespace"), Req("kind"), Req("name")),
        new Fake("k8s.restart", Req("cluster"), Req("namespace"), Req("name")),
        new Fake("noop", Opt("message")),
        new Fake("sleep", new StepInput("duration", InputType.Duration, true, "how long to sleep")),
        new Fake("http.call",
            Req("url"), Opt("method"), new StepInput("headers", InputType.Object, false, "request headers"),
            new StepInput("body", InputType.Any, false, "request body"), new StepInput("expect_status", InputType.Int, false, "expected status")),
        new Fake("notify.webhook", Req("url"), Opt("format"), Req("message")),
        new Fake("ansible.run",
            Opt("playbook"), Opt("playbook_yaml"), Opt("project"), Opt("project_commit"), Opt("credential"), Opt("inventory"), Opt("inventory_version"), Opt("inventory_yaml"), Opt("inventory_secrets"), Opt("limit"), new StepInput("extra_vars", InputType.Object, false, "extra vars"),
            new StepInput("check", InputType.Bool, false, "check mode"), new StepInput("diff", InputType.Bool, false, "diff"),
            new StepInput("forks", InputType.Int, false, "forks"), Opt("tags"), new StepInput("timeout", InputType.Duration, false, "run limit"),
            new StepInput("shards", InputType.Any, false, "shards"), new StepInput("fail_fast", InputType.Bool, false, "fail fast")),
    ];

    public static IReadOnlyDictionary<string, IStepExecutor> ByKind { get; } = List.ToDictionary(e => e.Kind);

    private static StepInput Req(string name) => new(name, InputType.String, true, $"the {name}");

    private static StepInput Opt(string name) => new(name, InputType.String, false, $"the {name}");

    private sealed class Fake(string kind, params StepInput[] inputs) : IStepExecutor
    {
        public string Kind => kind;
        public string Description => $"fake {kind}";
        public IReadOnlyList<StepInput> Inputs => inputs;

        public Task<StepOutcome> ExecuteAsync(StepContext context, CancellationToken cancellationToken) =>
            Task.FromResult(new StepOutcome("did nothing"));
    }
}
