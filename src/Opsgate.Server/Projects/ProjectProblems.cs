using Microsoft.AspNetCore.Http.HttpResults;
using Opsgate.Server.Credentials;

namespace Opsgate.Server.Projects;

/// <summary>
/// What a project's git work can fail with besides git's own answer (<see cref="GitException"/>): this server's setup
/// (no git binary, an unwritable project cache) or a credential whose secret is gone. Each is a clear problem, never a 500.
/// </summary>
internal static class ProjectProblems
{
    public static bool Handles(Exception e) =>
        e is GitUnavailableException or CredentialSecretMissingException or IOException or UnauthorizedAccessException;

    /// <summary>The answer for an exception <see cref="Handles"/> takes; the cache's own error (it names paths) goes to the log only.</summary>
    public static ProblemHttpResult For(Exception e, HttpContext context)
    {
        switch (e)
        {
            case GitUnavailableException:
                return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "git is not available", detail: e.Message);
            case CredentialSecretMissingException missing:
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: missing.Message,
                    extensions: new Dictionary<string, object?> { ["credential"] = missing.Credential });
            default:
                context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Opsgate.Projects")
                    .LogError(e, "The project cache could not be read or written");
                return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "project cache unavailable",
                    detail: "the project cache ({DataDir}/projects) could not be read or written; the server log has the reason");
        }
    }
}
