using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Http;

namespace Opsgate.Server.Credentials;

internal sealed record CreateCredentialRequest(string Name, string Kind, string Secret, string? Username = null, CredentialUseRequest? Use = null);

/// <summary>Who may use the credential; an omitted field takes its default (min_role operator, no keys, no groups).</summary>
internal sealed record CredentialUseRequest(string? MinRole = null, IReadOnlyList<string?>? Keys = null, IReadOnlyList<string?>? Groups = null);

internal sealed record CredentialUseResponse(string MinRole, IReadOnlyList<string> Keys, IReadOnlyList<string> Groups);

internal sealed record CredentialResponse(string Name, string Kind, string? Username, CredentialUseResponse Use, DateTime CreatedAt, string CreatedBy)
{
    public static CredentialResponse From(CredentialInfo c) =>
        new(c.Name, c.Kind, c.Username, new CredentialUseResponse(c.Use.MinRole.Name(), c.Use.Keys, c.Use.Groups), c.CreatedAt, c.CreatedBy);
}

internal sealed record CredentialList(IReadOnlyList<CredentialResponse> Items);

/// <summary>/api/v1/credentials: secrets for git (projects) and for the machines of playbook runs. The secret goes into the secret store and never comes back out.</summary>
internal static class CredentialsApi
{
    public const int MaxSecretLength = 16 * 1024;

    public static void MapCredentialsApi(this WebApplication app)
    {
        var group = app.MapGroup("/api/v1/credentials").WithTags("Credentials");
        group.MapPost("/", Create).RequireRole(Role.Admin, AccessScope.Global).Audited("credential.create", "credential")
            .WithSummary("Store a credential: name, kind (ssh_key, token or password), secret, optional username, optional use rules " +
                "(min_role, keys, groups; default: operators and up). The secret is never shown again.");
        // Operators name credentials in projects and jobs, so they may see the names and who may use them (never the secrets).
        group.MapGet("/", List).RequireRole(Role.Operator, AccessScope.Global).WithSummary("Stored credentials: names, kinds, usernames, use rules, when and by whom; never the secrets.");
        group.MapDelete("/{name}", Delete).RequireRole(Role.Admin, AccessScope.Global).Audited("credential.delete", "credential")
            .WithSummary("Delete a credential and its secret; refused while a project uses it or a pending, waiting or running job names it in its credential parameter.");
    }

    private static async Task<Results<Created<CredentialResponse>, ProblemHttpResult>> Create(
        CreateCredentialRequest request, HttpContext context, CredentialStore credentials)
    {
        context.SetAuditBody(request); // "secret" is redacted by name
        context.Audit().ResourceName = request.Name.Length <= 63 ? request.Name : request.Name[..63];
        if (!Validate.IsDnsLabel(request.Name))
            return Problems.Invalid("name", Validate.DnsLabelRule);
        if (!CredentialKinds.All.Contains(request.Kind))
            return Problems.Invalid("kind", $"must be one of {string.Join(", ", CredentialKinds.All)}");
        if (request.Secret.Length is 0 or > MaxSecretLength)
            return Problems.Invalid("secret", $"must be 1-{MaxSecretLength} characters");
        if (request.Username is { } user && (user.Length is 0 or > 128 || user.StartsWith('-') || user.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c == ':')))
            return Problems.Invalid("username", "must be 1-128 characters without spaces, control characters or ':', not starting with '-'");
        switch (request.Kind)
        {
            case CredentialKinds.SshKey when !request.Secret.Contains("-----BEGIN", StringComparison.Ordinal) || !request.Secret.Contains("PRIVATE KEY-----", StringComparison.Ordinal):
                return Problems.Invalid("secret", "an ssh_key must be an unencrypted private key in PEM or OpenSSH format (-----BEGIN ... PRIVATE KEY-----)");
            case CredentialKinds.Token or CredentialKinds.Password when request.Secret.Any(char.IsControl):
                return Problems.Invalid("secret", "a token or password must not contain control characters (line breaks)");
            case CredentialKinds.Password when request.Username is null:
                return Problems.Invalid("username", "a password credential needs a username");
        }
        if (CredentialUse.Check("use", request.Use?.MinRole, request.Use?.Keys, request.Use?.Groups) is { } badUse)
            return Problems.Invalid(badUse.Field, badUse.Message);
        var use = request.Use is { } u
            ? new CredentialUse(Roles.ParseOrNull(u.MinRole) ?? CredentialUse.Default.MinRole,
                (u.Keys ?? []).OfType<string>().Distinct(StringComparer.Ordinal).ToList(), (u.Groups ?? []).OfType<string>().Distinct(StringComparer.Ordinal).ToList())
            : CredentialUse.Default;
        try
        {
            var created = await credentials.CreateAsync(request.Name, request.Kind, request.Username, use, request.Secret, context.Principal()!.Name, context.RequestAborted);
            return TypedResults.Created($"/api/v1/credentials/{created.Name}", CredentialResponse.From(created));
        }
        catch (CredentialConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }

    private static async Task<Ok<CredentialList>> List(CredentialStore credentials, CancellationToken ct) =>
        TypedResults.Ok(new CredentialList((await credentials.ListAsync(ct)).Select(CredentialResponse.From).ToList()));

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(string name, HttpContext context, CredentialStore credentials)
    {
        context.Audit().ResourceName = name.Length <= 63 ? name : name[..63];
        if (!Validate.IsDnsLabel(name))
            return Problems.Invalid("name", Validate.DnsLabelRule);
        try
        {
            return await credentials.DeleteAsync(name, context.RequestAborted) ? TypedResults.NoContent() : Problems.NotFound($"credential '{name}' does not exist");
        }
        catch (CredentialConflictException e)
        {
            return Problems.Conflict(e.Message);
        }
    }
}
