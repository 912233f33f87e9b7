using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Http;

/// <summary>The OpenAPI document at /openapi/v1.json and the docs page that shows it.</summary>
public sealed partial class OpenApiTests
{
    [Fact]
    public async Task Every_mapped_endpoint_is_in_the_document_with_its_method()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var paths = (await DocumentAsync(server))["paths"]!.AsObject();

        var mapped = server.App.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? [])
                .Select(method => $"{method.ToUpperInvariant()} {DocumentPath(e.RoutePattern.RawText!)}"))
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Contains("POST /api/v1/apikeys", mapped);
        Assert.Contains("DELETE /api/v1/apikeys/{id}", mapped);

        var documented = paths
            .SelectMany(p => p.Value!.AsObject().Select(op => $"{op.Key.ToUpperInvariant()} {p.Key}"))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(mapped, documented);
        foreach (var (path, item) in paths)
        {
            foreach (var (method, operation) in item!.AsObject())
                Assert.False(string.IsNullOrWhiteSpace(operation!["summary"]?.GetValue<string>()), $"{method} {path} has no summary");
        }
    }

    [Fact]
    public async Task Api_key_bodies_and_parameters_are_described_with_snake_case_names()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var doc = await DocumentAsync(server);
        var schemas = doc["components"]!["schemas"]!.AsObject();

        var create = schemas["CreateApiKeyRequest"]!;
        Assert.Equal(["expires_at", "name", "namespaces", "role"], Properties(create));
        Assert.Equal(["name", "role"], create["required"]!.AsArray().Select(r => r!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.False(create["additionalProperties"]!.GetValue<bool>());
        Assert.Contains("key", Properties(schemas["CreatedApiKeyResponse"]!));
        Assert.Contains("revoked_at", Properties(schemas["ApiKeyResponse"]!));
        Assert.DoesNotContain(Properties(schemas["ApiKeyResponse"]!), p => p.Contains("key", StringComparison.Ordinal));
        foreach (var name in new[] { "ApiKeyList", "AuditPage", "AuditEntryResponse", "AuditVerifyResponse" })
            Assert.NotEmpty(Properties(schemas[name]!));

        foreach (var (name, schema) in schemas)
        {
            foreach (var property in Properties(schema!))
                Assert.True(SnakeCase().IsMatch(property), $"{name}.{property} is not snake_case");
        }

        var post = doc["paths"]!["/api/v1/apikeys"]!["post"]!;
        Assert.Equal("#/components/schemas/CreateApiKeyRequest", post["requestBody"]!["content"]!["application/json"]!["schema"]!["$ref"]!.GetValue<string>());
        Assert.True(post["requestBody"]!["required"]!.GetValue<bool>());
        Assert.Equal("#/components/schemas/CreatedApiKeyResponse", post["responses"]!["201"]!["content"]!["application/json"]!["schema"]!["$ref"]!.GetValue<string>());

        var id = doc["paths"]!["/api/v1/apikeys/{id}"]!["delete"]!["parameters"]!.AsArray().Single()!;
        Assert.Equal(("id", "path", true), (id["name"]!.GetValue<string>(), id["in"]!.GetValue<string>(), id["required"]!.GetValue<bool>()));
        Assert.Equal(["include_revoked"], QueryParameters(doc, "/api/v1/apikeys", "get"));
        Assert.Equal(["action", "actor", "cluster", "cursor", "limit", "namespace", "since", "until"], QueryParameters(doc, "/api/v1/audit", "get"));
    }

    [Fact]
    public async Task The_document_declares_how_to_authenticate()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var doc = await DocumentAsync(server);
        var schemes = doc["components"]!["securitySchemes"]!;
        Assert.Equal("apiKey", schemes["ApiKey"]!["type"]!.GetValue<string>());
        Assert.Equal("header", schemes["ApiKey"]!["in"]!.GetValue<string>());
        Assert.Equal("X-API-Key", schemes["ApiKey"]!["name"]!.GetValue<string>());
        Assert.Equal("http", schemes["Bearer"]!["type"]!.GetValue<string>());
        Assert.Equal("bearer", schemes["Bearer"]!["scheme"]!.GetValue<string>());
        var required = doc["security"]!.AsArray().SelectMany(r => r!.AsObject().Select(s => s.Key)).Order(StringComparer.Ordinal);
        Assert.Equal(["ApiKey", "Bearer"], required);
    }

    [Fact]
    public async Task The_document_passes_an_OpenAPI_validator_which_refuses_a_broken_copy()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var doc = await DocumentAsync(server);
        Assert.StartsWith("3.1", doc["openapi"]!.GetValue<string>(), StringComparison.Ordinal);

        var (valid, output) = await ValidateAsync(doc.ToJsonString());
        Assert.True(valid, $"the OpenAPI validator refused /openapi/v1.json:\n{output}");

        // The same check must be able to say no, or passing it means nothing.
        doc["paths"]!["/api/v1/apikeys"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!["$ref"] = "#/components/schemas/NoSuchSchema";
        doc["paths"]!["/api/v1/apikeys/{id}"]!["delete"]!["parameters"]![0]!["in"] = "body";
        var (brokenValid, brokenOutput) = await ValidateAsync(doc.ToJsonString());
        Assert.False(brokenValid, brokenOutput);
        Assert.Contains("NoSuchSchema", brokenOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_docs_page_opens_without_a_key_while_the_root_is_the_console()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = server.BaseAddress };
        var root = await noRedirects.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, root.StatusCode);
        Assert.Equal("/signin", root.Headers.Location?.OriginalString);

        // A browser has no API key: the page, its script and the document it loads answer without one.
        var browser = server.Client();
        var page = await browser.GetAsync("/api/v1/docs/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<title>Opsgate API</title>", html, StringComparison.Ordinal);
        Assert.Contains("swagger-ui", html, StringComparison.Ordinal);
        Assert.Contains("\"url\":\"/openapi/v1.json\"", await browser.GetStringAsync("/api/v1/docs/index.js"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/openapi/v1.json")).StatusCode);
    }

    internal static async Task<JsonNode> DocumentAsync(OpsgateServer server)
    {
        var response = await server.Client().GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    /// <summary>A route pattern as OpenAPI writes it: no trailing slash, no route constraints.</summary>
    private static string DocumentPath(string pattern)
    {
        var path = RouteConstraint().Replace(pattern, "{$1}");
        return path.Length > 1 ? path.TrimEnd('/') : path;
    }

    private static List<string> Properties(JsonNode schema) =>
        schema["properties"]?.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal).ToList() ?? [];

    private static List<string> QueryParameters(JsonNode doc, string path, string method) =>
        doc["paths"]![path]![method]!["parameters"]!.AsArray()
            .Where(p => p!["in"]!.GetValue<string>() == "query")
            .Select(p => p!["name"]!.GetValue<string>())
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>Runs scripts/openapi-validator/validate.mjs (@readme/openapi-parser, installed by scripts/test.sh).</summary>
    private static async Task<(bool Valid, string Output)> ValidateAsync(string document)
    {
        var root = RepositoryRoot();
        var parser = Path.Combine(root, ".tools", "openapi-validator", "node_modules", "@readme", "openapi-parser", "package.json");
        Assert.True(File.Exists(parser),
            $"The OpenAPI validator is not installed ({parser} is missing). Run scripts/test.sh, which installs " +
            "@readme/openapi-parser from scripts/openapi-validator/package-lock.json into .tools/openapi-validator with npm (Node.js 20 or later).");

        var file = Path.Combine(Path.GetTempPath(), $"opsgate-openapi-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, document);
        try
        {
            var start = new ProcessStartInfo("node")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = root,
            };
            start.ArgumentList.Add(Path.Combine(root, "scripts", "openapi-validator", "validate.mjs"));
            start.ArgumentList.Add(file);
            Process process;
            try
            {
                process = Process.Start(start)!;
            }
            catch (Win32Exception e)
            {
                Assert.Fail($"The OpenAPI validator needs Node.js 20 or later on PATH (node): {e.Message}");
                throw;
            }
            using (process)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
                var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
                await process.WaitForExitAsync(timeout.Token);
                var output = await stdout + await stderr;
                Assert.True(process.ExitCode is 0 or 1, $"the OpenAPI validator failed to run (exit {process.ExitCode}):\n{output}");
                return (process.ExitCode == 0, output);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Opsgate.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no Opsgate.slnx above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex("^[a-z][a-z0-9]*(_[a-z0-9]+)*$")]
    private static partial Regex SnakeCase();

    [GeneratedRegex(@"\{\*{0,2}([^}:=?]+)[^}]*\}")]
    private static partial Regex RouteConstraint();
}
