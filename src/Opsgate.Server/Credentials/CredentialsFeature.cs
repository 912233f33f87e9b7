namespace Opsgate.Server.Credentials;

/// <summary>Named credentials (SSH keys, tokens, passwords) for git and hosts: metadata in the database, values in the secret store, use rules per credential.</summary>
internal static class CredentialsFeature
{
    public static void AddCredentials(this WebApplicationBuilder builder) =>
        builder.Services.AddSingleton<CredentialStore>();

    public static void MapCredentials(this WebApplication app) => app.MapCredentialsApi();
}
