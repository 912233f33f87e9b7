using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Opsgate.Server.Access;

/// <summary>How a route is limited by a principal's namespace allowlist; see docs/permissions.md for each route's rule.</summary>
internal enum AccessScope
{
    /// <summary>Anonymous: answers anyone (liveness and readiness probes).</summary>
    Public,
    /// <summary>The resource lives in no namespace (API keys, credentials, projects, inventories, clusters): the role decides.</summary>
    Global,
    /// <summary>The namespace in the path must be in the principal's allowlist (and the cluster's).</summary>
    Namespace,
    /// <summary>Submitting a job: every target known at submit must be in the principal's allowlist; run-time targets are checked when their step runs.</summary>
    Submit,
    /// <summary>One job: every target of the job must be in the principal's allowlist (<see cref="Jobs.JobAccess"/>).</summary>
    Job,
    /// <summary>A listing of jobs: only those whose every target is in the principal's allowlist.</summary>
    Jobs,
    /// <summary>The audit log: entries about the principal's namespaces and the jobs it may see, and its own.</summary>
    Audit,
}

/// <summary>A route's declared least role (null: anonymous) and namespace scope; shown in the OpenAPI document as x-opsgate-role and x-opsgate-scope.</summary>
internal sealed record AccessRule(Role? Role, AccessScope Scope)
{
    public string RoleName => Role?.Name() ?? "anonymous";

    public string ScopeName => Scope.ToString().ToLowerInvariant();
}

/// <summary>Writes each operation's <see cref="AccessRule"/> into the OpenAPI document, where clients, the docs page and the route tests read it.</summary>
/// <summary>How a route declares its <see cref="AccessRule"/>: the policy the authorization middleware enforces and the metadata the scope checks read.</summary>
internal static class AccessRuleExtensions
{
    /// <summary>The route's least role and namespace scope (see <see cref="AccessRule"/>): every route declares both.</summary>
    public static RouteHandlerBuilder RequireRole(this RouteHandlerBuilder builder, Role role, AccessScope scope) =>
        builder.RequireAuthorization(Roles.Policy(role)).WithMetadata(new AccessRule(role, scope));

    public static RouteGroupBuilder RequireRole(this RouteGroupBuilder builder, Role role, AccessScope scope) =>
        builder.RequireAuthorization(Roles.Policy(role)).WithMetadata(new AccessRule(role, scope));

    /// <summary>A route anyone may call, without credentials.</summary>
    public static RouteHandlerBuilder Anonymous(this RouteHandlerBuilder builder) =>
        builder.AllowAnonymous().WithMetadata(new AccessRule(null, AccessScope.Public));
}

internal sealed class AccessRuleTransformer : IOpenApiOperationTransformer
{
    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.ActionDescriptor.EndpointMetadata.OfType<AccessRule>().LastOrDefault() is { } rule)
        {
            operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
            operation.Extensions["x-opsgate-role"] = new JsonNodeExtension(System.Text.Json.Nodes.JsonValue.Create(rule.RoleName));
            operation.Extensions["x-opsgate-scope"] = new JsonNodeExtension(System.Text.Json.Nodes.JsonValue.Create(rule.ScopeName));
        }
        return Task.CompletedTask;
    }
}
