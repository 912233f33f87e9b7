using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Credentials;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;
using Opsgate.Server.Projects;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>
/// <c>hosts</c> and <c>vars</c>: Ansible YAML as text, or the same structure as a JSON object; or <c>source</c>: a
/// script or inventory file in a project. Exactly one of <c>hosts</c> and <c>source</c>.
/// </summary>
internal sealed record CreateInventoryRequest(string Name, JsonNode? Hosts = null, string? Env = null, string? Version = null, JsonNode? Vars = null, InventorySourceRequest? Source = null);

/// <summary>A file (or directory) in a project's checkout that ansible-inventory reads: a script, YAML, INI or a constructed config.</summary>
internal sealed record InventorySourceRequest(string? Project, string? Path);

/// <summary>Where a sourced version came from: the project (its name then), the path, the commit.</summary>
internal sealed record InventorySourceResponse(string Project, string Path, string Commit)
{
    public static InventorySourceResponse? From(InventorySourceInfo? s) => s is null ? null : new(s.Project, s.Path, s.Commit);
}

internal sealed record InventoryResponse(long Id, string Name, string? Env, string Version, long HostCount, DateTime CreatedAt, string CreatedBy, InventorySourceResponse? Source)
{
    public static InventoryResponse From(InventoryVersion v) => new(v.Id, v.Name, v.Env, v.Version, v.HostCount, v.CreatedAt, v.CreatedBy, InventorySourceResponse.From(v.Source));
}

/// <summary>
/// One version with what was sent for it (for a sourced version: the YAML generated from ansible's expansion, and the
/// source); the values of secret variables (<see cref="Secrets.SecretVariables"/>) are [REDACTED], for every role.
/// </summary>
internal sealed record InventoryDetail(
    long Id, string Name, string? Env, string Version, long HostCount, DateTime CreatedAt, string CreatedBy, string Hosts, string? Vars, InventorySourceResponse? Source);

/// <summary>A sync's answer: whether it stored a new version, and the latest version.</summary>
internal sealed record InventorySyncResponse(bool Changed, InventoryResponse Inventory);

internal sealed record InventoryList(IReadOnlyList<InventoryResponse> Items);

/// <summary>A host as ansible expands it, with the groups it is in (ansible's group_names: parents included, not all or ungrouped).</summary>
internal sealed record InventoryHost(string Name, IReadOnlyList<string> Groups);

internal sealed record InventoryHostsPage(long Id, string Name, string Version, long Total, int Offset, int Limit, IReadOnlyList<InventoryHost> Items);

/// <summary>/api/v1/inventories: stored Ansible inventories, versioned, checked and expanded by ansible when stored.</summary>
internal static class InventoriesApi
{
    private const int DefaultLimit = 100;
    private const int MaxLimit = 1000;

    public static void MapInventoriesApi(this WebApplication app)
    {
        var group = app.MapGroup("/api/v1/inventories").WithTags("Inventories");
        group.MapPost("/", Create).RequireRole(Role.Operator, AccessScope.Global).Audited("inventory.create", "inventory")
            .WithSummary("Store an inventory (hosts and vars as Ansible YAML, or a source: a script or inventory file in a project); posting an existing name adds a version.");
        group.MapPost("/{ref}/sync", Sync).RequireRole(Role.Operator, AccessScope.Global).Audited("inventory.sync", "inventory")
            .WithSummary("Read an inventory's project source again (fetching the project first); stores a new version when ansible's expansion changed.");
        group.MapGet("/", List).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Every inventory, at its latest version.");
        group.MapGet("/{ref}", Get).RequireRole(Role.Viewer, AccessScope.Global)
            .WithSummary("One inventory by id or name: its latest version, or ?version=, with the hosts and vars it was given (secret values as [REDACTED]).");
        group.MapGet("/{ref}/versions", Versions).RequireRole(Role.Viewer, AccessScope.Global).WithSummary("Every version of an inventory, oldest first.");
        group.MapGet("/{ref}/hosts", Hosts).RequireRole(Role.Viewer, AccessScope.Global)
            .WithSummary("The hosts of an inventory as ansible expands them, with their groups; paged with limit and offset.");
        group.MapDelete("/{ref}", Delete).RequireRole(Role.Operator, AccessScope.Global).Audited("inventory.delete", "inventory")
            .WithSummary("Delete an inventory with all its versions; refused while a waiting or running job uses it.");
    }

    private static async Task<Results<Created<InventoryResponse>, ProblemHttpResult>> Create(
        CreateInventoryRequest request, HttpContext context, InventoryStore store, InventorySources sources, ProjectStore projects, CredentialStore credentials)
    {
        // hosts and vars may hold passwords (ansible_password): never in the audit log.
        context.SetAuditBody(new { request.Name, request.Env, request.Version, request.Source });
        context.Audit().ResourceName = request.Name.Length <= 63 ? request.Name : request.Name[..63];
        if (!InventoryNames.IsValidName(request.Name))
            return Problems.Invalid("name", InventoryNames.NameRule);
        if (request.Env is not null && !Validate.IsDnsLabel(request.Env))
            return Problems.Invalid("env", Validate.DnsLabelRule);
        if (request.Version is not null && !InventoryNames.IsValidVersion(request.Version))
            return Problems.Invalid("version", InventoryNames.VersionRule);
        if (request.Source is not null)
            return await CreateFromSourceAsync(request, request.Source, context, store, sources, projects, credentials);
        try
        {
            var hosts = InventoryYaml.Text("hosts", request.Hosts)
                ?? throw new InventoryYamlException("hosts", "is required: give 'hosts' (Ansible YAML: all: {hosts: ..., children: ...}) or 'source' ({project, path} of a file in a project)");
            var vars = InventoryYaml.Text("vars", request.Vars);
            var created = await store.CreateAsync(new NewInventory(request.Name, request.Env, request.Version, hosts, vars), context.Principal()!.Name, context.RequestAborted);
            return Stored(context, created);
        }
        catch (InventoryYamlException e)
        {
            return Problems.Invalid(e.Field, e.Message);
        }
        catch (InventoryException e) when (e.ServerSide)
        {
            // A plain YAML inventory runs no script: if ansible-inventory is missing or too slow, the server is at fault.
            context.Response.Headers.RetryAfter = "30";
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Service unavailable",
                detail: $"hosts: {e.Message}; try again later");
        }
        catch (InventoryException e)
        {
            // ansible's message may quote a value from the inventory: the caller sees it, the audit log does not.
            context.Audit().Error = "hosts: ansible-inventory cannot read the inventory (its message is in the response only)";
            return Problems.Invalid("hosts", $"ansible-inventory cannot read the inventory: {e.Message}");
        }
        catch (InventoryConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }

    private static async Task<Results<Created<InventoryResponse>, ProblemHttpResult>> CreateFromSourceAsync(
        CreateInventoryRequest request, InventorySourceRequest source, HttpContext context, InventoryStore store, InventorySources sources, ProjectStore projects,
        CredentialStore credentials)
    {
        if (request.Hosts is not null || request.Vars is not null)
            return Problems.Invalid("source", "give hosts (and vars) or source, not both");
        if (string.IsNullOrEmpty(source.Project))
            return Problems.Invalid("source.project", "is required: the id or name of a project");
        if (source.Path is null)
            return Problems.Invalid("source.path", "is required: a file or directory in the project's checkout");
        if (!Validate.IsDnsLabel(source.Project) || await projects.FindAsync(source.Project, context.RequestAborted) is not { } project)
            return Problems.Invalid("source.project", $"project '{(source.Project.Length <= 63 ? source.Project : source.Project[..63] + "...")}' does not exist");
        if (await credentials.FetchRefusalAsync(project.Name, project.Credential, context.Principal()!, context.RequestAborted) is { } refusal)
            return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: refusal);
        try
        {
            var sourced = await sources.ReadAsync(project, source.Path, context.RequestAborted);
            var (created, _) = await store.CreateAsync(request.Name, request.Env, request.Version, sourced, onlyIfChanged: false, context.Principal()!.Name, context.RequestAborted);
            return Stored(context, created);
        }
        catch (InventorySourceException e)
        {
            return SourceProblem(context, e);
        }
        catch (Exception e) when (ProjectProblems.Handles(e))
        {
            return ProjectProblems.For(e, context);
        }
        catch (InventoryConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }

    private static async Task<Results<Ok<InventorySyncResponse>, ProblemHttpResult>> Sync(
        string @ref, HttpContext context, InventoryStore store, InventorySources sources, ProjectStore projects, CredentialStore credentials)
    {
        context.Audit().ResourceName = @ref.Length <= 63 ? @ref : @ref[..63];
        if (Check(@ref, null, out var reference) is { } bad)
            return bad;
        if (await store.FindAsync(reference, null, context.RequestAborted) is not { } latest)
            return NotFound(reference, null);
        context.Audit().ResourceName = latest.Name;
        if (latest.Source is not { } source)
            return Problems.Conflict($"inventory '{latest.Name}' is not sourced from a project (its latest version was sent as YAML); post a version with source to make it one");
        if (await projects.FindAsync(source.ProjectId, context.RequestAborted) is not { } project)
            return Problems.Conflict($"project '{source.Project}', the source of inventory '{latest.Name}', does not exist any more; post a version with another source");
        if (await credentials.FetchRefusalAsync(project.Name, project.Credential, context.Principal()!, context.RequestAborted) is { } refusal)
            return TypedResults.Problem(statusCode: 403, title: "Forbidden", detail: refusal);
        try
        {
            var sourced = await sources.ReadAsync(project, source.Path, context.RequestAborted);
            var (version, created) = await store.CreateAsync(latest.Name, latest.Env, null, sourced, onlyIfChanged: true, context.Principal()!.Name, context.RequestAborted);
            context.Audit().ResourceName = $"{version.Name}@{version.Version}";
            return TypedResults.Ok(new InventorySyncResponse(created, InventoryResponse.From(version)));
        }
        catch (InventorySourceException e)
        {
            return SourceProblem(context, e);
        }
        catch (Exception e) when (ProjectProblems.Handles(e))
        {
            return ProjectProblems.For(e, context);
        }
        catch (InventoryConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }

    private static Created<InventoryResponse> Stored(HttpContext context, InventoryVersion created)
    {
        context.Audit().ResourceName = $"{created.Name}@{created.Version}";
        return TypedResults.Created($"/api/v1/inventories/{created.Id}?version={Uri.EscapeDataString(created.Version)}", InventoryResponse.From(created));
    }

    private static ProblemHttpResult SourceProblem(HttpContext context, InventorySourceException e)
    {
        if (e.Status == StatusCodes.Status502BadGateway)
            return TypedResults.Problem(statusCode: e.Status, title: "git fetch failed", detail: e.Message);
        // ansible's message may quote what the script printed: the caller sees it, the audit log does not.
        context.Audit().Error = $"{e.Field}: the inventory source was refused (the reason is in the response only)";
        return Problems.Invalid(e.Field, e.Message);
    }

    private static async Task<Ok<InventoryList>> List(InventoryStore store, CancellationToken ct) =>
        TypedResults.Ok(new InventoryList((await store.ListAsync(ct)).Select(InventoryResponse.From).ToList()));

    private static async Task<Results<Ok<InventoryDetail>, ProblemHttpResult>> Get(string @ref, string? version, InventoryStore store, CancellationToken ct)
    {
        if (Check(@ref, version, out var reference) is { } bad)
            return bad;
        if (await store.SourceAsync(reference, version, ct) is not { } found)
            return NotFound(reference, version);
        var v = found.Version;
        return TypedResults.Ok(new InventoryDetail(v.Id, v.Name, v.Env, v.Version, v.HostCount, v.CreatedAt, v.CreatedBy, found.Hosts, found.Vars, InventorySourceResponse.From(v.Source)));
    }

    private static async Task<Results<Ok<InventoryList>, ProblemHttpResult>> Versions(string @ref, InventoryStore store, CancellationToken ct)
    {
        if (Check(@ref, null, out var reference) is { } bad)
            return bad;
        return await store.VersionsAsync(reference, ct) is { } versions
            ? TypedResults.Ok(new InventoryList(versions.Select(InventoryResponse.From).ToList()))
            : NotFound(reference, null);
    }

    private static async Task<Results<Ok<InventoryHostsPage>, ProblemHttpResult>> Hosts(
        string @ref, string? version, int? limit, int? offset, InventoryStore store, CancellationToken ct)
    {
        if (Check(@ref, version, out var reference) is { } bad)
            return bad;
        if (limit is < 1 or > MaxLimit)
            return Problems.Invalid("limit", $"must be between 1 and {MaxLimit}");
        if (offset is < 0)
            return Problems.Invalid("offset", "must not be negative");
        if (await store.ResolveAsync(reference, version, ct) is not { } found)
            return NotFound(reference, version);
        var (take, skip) = (limit ?? DefaultLimit, offset ?? 0);
        var groups = GroupsByHost(found.Expanded.List);
        var items = found.Expanded.Hosts.Skip(skip).Take(take)
            .Select(h => new InventoryHost(h, groups.TryGetValue(h, out var g) ? g : [])).ToList();
        var v = found.Version;
        return TypedResults.Ok(new InventoryHostsPage(v.Id, v.Name, v.Version, found.Expanded.Hosts.Count, skip, take, items));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(string @ref, HttpContext context, InventoryStore store)
    {
        context.Audit().ResourceName = @ref.Length <= 63 ? @ref : @ref[..63];
        if (Check(@ref, null, out var reference) is { } bad)
            return bad;
        try
        {
            return await store.DeleteAsync(reference, context.RequestAborted) ? TypedResults.NoContent() : NotFound(reference, null);
        }
        catch (InventoryConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }

    private static ProblemHttpResult? Check(string text, string? version, out InventoryRef reference)
    {
        if (!InventoryRef.TryParse(text, out reference))
            return Problems.Invalid("ref", InventoryNames.ReferenceRule);
        if (version is not null && !InventoryNames.IsValidVersion(version))
            return Problems.Invalid("version", InventoryNames.VersionRule);
        return null;
    }

    private static ProblemHttpResult NotFound(InventoryRef reference, string? version) =>
        Problems.NotFound(version is null ? $"inventory '{reference}' does not exist" : $"inventory '{reference}' has no version '{version}'");

    /// <summary>Each host's groups as ansible's group_names has them: every group it is in directly or through children, without all and ungrouped.</summary>
    internal static Dictionary<string, IReadOnlyList<string>> GroupsByHost(JsonObject list)
    {
        var parents = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var direct = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (group, node) in list)
        {
            if (group == "_meta" || node is not JsonObject g)
                continue;
            foreach (var child in g["children"]?.AsArray() ?? [])
            {
                if (child?.GetValue<string>() is { } c)
                    (parents.TryGetValue(c, out var p) ? p : parents[c] = []).Add(group);
            }
            foreach (var host in g["hosts"]?.AsArray() ?? [])
            {
                if (host?.GetValue<string>() is { } h)
                    (direct.TryGetValue(h, out var d) ? d : direct[h] = []).Add(group);
            }
        }
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (host, groups) in direct)
        {
            var all = new SortedSet<string>(StringComparer.Ordinal);
            var todo = new Stack<string>(groups);
            while (todo.TryPop(out var group))
            {
                if (!all.Add(group))
                    continue;
                foreach (var parent in parents.GetValueOrDefault(group) ?? [])
                    todo.Push(parent);
            }
            all.Remove("all");
            all.Remove("ungrouped");
            result[host] = [.. all];
        }
        return result;
    }
}
