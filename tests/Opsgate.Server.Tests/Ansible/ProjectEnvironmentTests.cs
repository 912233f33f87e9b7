using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Ansible;

/// <summary>A broken environment (no git, an unusable project cache, a secret store missing a secret, a slow ansible-inventory) is a clear problem, never a 500.</summary>
public sealed class ProjectEnvironmentTests
{
    private const string Site = """
        - hosts: all
          gather_facts: false
          tasks: [{debug: {msg: hi}}]
        """;

    private static Task<HttpResponseMessage> CreateProjectAsync(OpsgateServer server, string name, string gitRepo, string? gitRef = null, string? credential = null) =>
        server.Admin.PostAsJsonAsync("/api/v1/projects", new { name, git_repo = gitRepo, @ref = gitRef, credential }, OpsgateServer.Json);

    [Fact]
    public async Task A_missing_git_binary_is_a_503_naming_the_setting_and_no_project_is_made()
    {
        using var repo = await GitRepo.CreateAsync();
        await repo.CommitAsync("one", ("site.yml", Site));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Ansible:GitCommand=/nonexistent/git", repo.AllowArg]);

        var detail = await Problem.AssertAsync(await CreateProjectAsync(server, "p", repo.Bare, "main"), HttpStatusCode.ServiceUnavailable);
        Assert.Contains("Ansible:GitCommand", detail, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/git", detail, StringComparison.Ordinal);
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/projects")).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task A_project_cache_that_cannot_be_written_is_a_503_on_sync_and_the_sync_works_once_it_is_repaired()
    {
        using var repo = await GitRepo.CreateAsync();
        var one = await repo.CommitAsync("one", ("site.yml", Site));
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [repo.AllowArg]);
        var created = await CreateProjectAsync(server, "p", repo.Bare, "main");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

        // A file where the project's mirror goes: the fresh mirror cannot be moved into place.
        var mirror = Path.Combine(server.DataDir, "projects", id + ".git");
        await File.WriteAllTextAsync(mirror, "in the way");
        var detail = await Problem.AssertAsync(await server.Admin.PostAsync("/api/v1/projects/p/sync", null), HttpStatusCode.ServiceUnavailable);
        Assert.Contains("project cache", detail, StringComparison.Ordinal);
        Assert.DoesNotContain(server.DataDir, detail, StringComparison.Ordinal);

        File.Delete(mirror);
        var synced = await server.Admin.PostAsync("/api/v1/projects/p/sync", null);
        Assert.Equal(HttpStatusCode.OK, synced.StatusCode);
        Assert.Equal(one, (await synced.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("commit").GetString());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_credential_whose_secret_is_gone_from_the_secret_store_is_a_409_naming_it(Provider provider)
    {
        await using var server = await OpsgateServer.StartAsync(provider);
        var response = await server.Admin.PostAsJsonAsync("/api/v1/credentials", new { name = "tok", kind = "token", secret = "s3cret-value" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);

        // The secret store lost the secret (a database restored apart from it, a hand edit): the row is still there.
        await using (var connection = await server.OpenDatabaseAsync())
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM secrets WHERE name = 'credential/tok/secret'";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        response = await CreateProjectAsync(server, "p", "https://git.example.invalid/repo.git", "main", credential: "tok");
        var detail = await Problem.AssertAsync(response, HttpStatusCode.Conflict);
        Assert.Contains("credential 'tok'", detail, StringComparison.Ordinal);
        Assert.Contains("missing from the secret store", detail, StringComparison.Ordinal);
        Assert.Empty((await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/projects")).GetProperty("items").EnumerateArray());

        // Deleting it and making it again repairs it.
        Assert.Equal(HttpStatusCode.NoContent, (await server.Admin.DeleteAsync("/api/v1/credentials/tok")).StatusCode);
        response = await server.Admin.PostAsJsonAsync("/api/v1/credentials", new { name = "tok", kind = "token", secret = "s3cret-value" }, OpsgateServer.Json);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task An_ansible_inventory_too_slow_for_a_plain_yaml_inventory_is_a_503_with_retry_after()
    {
        using var dir = new TempDir();
        var slow = Path.Combine(dir.Path, "slow-inventory");
        await File.WriteAllTextAsync(slow, "#!/bin/sh\nexec sleep 30\n");
        File.SetUnixFileMode(slow, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, [$"--Ansible:InventoryCommand={slow}", "--Ansible:InventoryTimeout=00:00:01"]);

        var response = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "web", hosts = "all:\n  hosts:\n    h1: {}\n" }, OpsgateServer.Json);
        var detail = await Problem.AssertAsync(response, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("Ansible:InventoryTimeout", detail, StringComparison.Ordinal);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync("/api/v1/inventories/web")).StatusCode);
    }

    [Fact]
    public async Task A_missing_ansible_inventory_is_a_503_naming_the_setting_not_a_500()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, ["--Ansible:InventoryCommand=/nonexistent/ansible-inventory"]);

        var response = await server.Admin.PostAsJsonAsync("/api/v1/inventories", new { name = "web", hosts = "all:\n  hosts:\n    h1: {}\n" }, OpsgateServer.Json);
        var detail = await Problem.AssertAsync(response, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("Ansible:InventoryCommand", detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync("/api/v1/inventories/web")).StatusCode);
    }
}
