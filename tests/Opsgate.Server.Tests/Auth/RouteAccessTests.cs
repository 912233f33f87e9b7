using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Opsgate.Server.Tests.Http;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Auth;

/// <summary>
/// Every route declares its least role and its namespace scope in the OpenAPI document (x-opsgate-role,
/// x-opsgate-scope), and the server holds every route to them: the matrix below is generated from the document, so a
/// new route is covered the day it is added, and a route without a rule fails the build's tests.
/// </summary>
public sealed class RouteAccessTests
{
    private static readonly string[] RoleOrder = ["viewer", "operator", "approver", "admin"];
    private static readonly string[] Scopes = ["public", "global", "namespace", "submit", "job", "jobs", "audit"];

    private sealed record Operation(string Method, string Path, string Role, string Scope)
    {
        public bool Mutating => Method is not ("GET" or "HEAD");
        public override string ToString() => $"{Method} {Path} ({Role}, {Scope})";
    }

    private static async Task<List<Operation>> OperationsAsync(OpsgateServer server)
    {
        var doc = await OpenApiTests.DocumentAsync(server);
        var operations = new List<Operation>();
        foreach (var (path, item) in doc["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                var role = operation!["x-opsgate-role"]?.GetValue<string>();
                var scope = operation["x-opsgate-scope"]?.GetValue<string>();
                Assert.True(role is not null && scope is not null, $"{method.ToUpperInvariant()} {path} declares no access rule (x-opsgate-role, x-opsgate-scope)");
                operations.Add(new Operation(method.ToUpperInvariant(), path, role!, scope!));
            }
        }
        return operations;
    }

    [Fact]
    public async Task Every_route_in_the_document_declares_a_role_and_a_scope()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var operations = await OperationsAsync(server);
        Assert.True(operations.Count > 40, $"only {operations.Count} operations");
        foreach (var op in operations)
        {
            Assert.True(op.Role == "anonymous" || RoleOrder.Contains(op.Role), $"{op}: unknown role");
            Assert.True(Scopes.Contains(op.Scope), $"{op}: unknown scope");
            Assert.True((op.Role == "anonymous") == (op.Scope == "public"), $"{op}: only anonymous routes are public");
        }
        Assert.Contains(operations, o => o is { Method: "POST", Path: "/api/v1/jobs/{id}/cancel", Role: "operator", Scope: "job" });
        Assert.Contains(operations, o => o is { Method: "GET", Path: "/api/v1/audit", Scope: "audit" });
    }

    [Fact]
    public async Task The_permission_model_page_lists_every_route_with_its_rule()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite);
        var documented = (await OperationsAsync(server)).Select(o => $"{o.Method} {o.Path} | {o.Role} | {o.Scope}").Order(StringComparer.Ordinal).ToList();
        var page = await File.ReadAllLinesAsync(Path.Combine(OpenApiTests.RepositoryRoot(), "docs", "permissions.md"));
        var listed = page.Where(l => l.StartsWith("| `", StringComparison.Ordinal) && l.Contains(" /", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries))
            .Select(cells => $"{cells[1].Trim('`')} | {cells[2]} | {cells[3]}")
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(documented, listed);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Every_route_refuses_too_little_role_and_every_mutating_route_a_namespace_outside_the_allowlist(Provider provider)
    {
        await using var s = await JobScopeTests.StartAsync(provider);
        var server = s.Server;
        var admin = server.Admin;
        var keys = new Dictionary<string, HttpClient> { ["admin"] = admin };
        foreach (var role in RoleOrder[..^1])
            keys[role] = server.Client((await server.CreateKeyAsync($"any-{role}", role)).Key);

        var running = await TestJobs.SubmitAsync(admin, "hold-then-scale", new { @namespace = "staging", hold = "60s" });
        var failed = await TestJobs.SubmitAsync(admin, "hold-then-scale", new { @namespace = "staging", deployment = "missing" });
        var waiting = await TestJobs.SubmitAsync(admin, "gated-scale", new { @namespace = "staging" });
        await TestJobs.WaitAsync(admin, running, j => j.Step("hold").GetProperty("status").GetString() == "running");
        Assert.Equal("failed", (await TestJobs.WaitAsync(admin, failed)).Status());

        var checkedScope = 0;
        foreach (var op in await OperationsAsync(server))
        {
            if (op.Path.EndsWith("/events/ws", StringComparison.Ordinal))
                continue; // a WebSocket upgrade, not a plain request: its rule is the events route's, tested in JobScopeTests
            var jobId = op.Path.EndsWith("/retry", StringComparison.Ordinal) ? failed
                : op.Path.EndsWith("/approve", StringComparison.Ordinal) || op.Path.EndsWith("/reject", StringComparison.Ordinal) ? waiting : running;
            var url = op.Path.Replace("{id}", jobId).Replace("{namespace}", "staging").Replace("{cluster}", "kube").Replace("{name}", "web")
                .Replace("{ref}", "nothing-here").Replace("{idOrName}", "nothing-here");
            Assert.DoesNotContain("{", url);
            Func<string> body = () => op.Scope == "submit" ? SubmitBody(op.Path) : op.Path.EndsWith("/scale", StringComparison.Ordinal) ? """{"replicas":1}""" : "{}";

            if (op.Role == "anonymous")
            {
                Assert.True((await SendAsync(server.Client(), op, url, body())).IsSuccessStatusCode, $"{op} answers anonymous callers");
                continue;
            }
            var anonymous = await SendAsync(server.Client(), op, url, body());
            Assert.True(anonymous.StatusCode == HttpStatusCode.Unauthorized, $"{op} without a key: {(int)anonymous.StatusCode}");
            var least = Array.IndexOf(RoleOrder, op.Role);
            if (least > 0)
            {
                var below = RoleOrder[least - 1];
                var detail = await Problem.AssertAsync(await SendAsync(keys[below], op, url, body()), HttpStatusCode.Forbidden);
                Assert.Contains($"requires role {op.Role}", detail);
            }
            if (!op.Mutating)
                continue;
            foreach (var (name, client) in new[] { ("operator", s.Operator), ("approver", s.Approver) })
            {
                if (Array.IndexOf(RoleOrder, name) < least)
                    continue;
                var response = await SendAsync(client, op, url, body());
                var text = await response.Content.ReadAsStringAsync();
                if (op.Scope is "job" or "namespace" or "submit")
                {
                    Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{op} as the prod-only {name}: {(int)response.StatusCode} {text}");
                    Assert.Contains("'staging'", text);
                    checkedScope++;
                }
                else
                {
                    // Not namespaced: the allowlist is not what decides (a missing resource or bad body is fine).
                    Assert.True(response.StatusCode is not (HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized) || !text.Contains("allowlist"),
                        $"{op} as the prod-only {name}: {(int)response.StatusCode} {text}");
                }
            }
        }
        Assert.True(checkedScope >= 20, $"only {checkedScope} namespace refusals checked");
        // Nothing the refused calls asked for happened.
        Assert.Equal("running", (await TestJobs.GetAsync(admin, running)).Status());
        Assert.Equal("failed", (await TestJobs.GetAsync(admin, failed)).Status());
        Assert.Equal("waiting_approval", (await TestJobs.GetAsync(admin, waiting)).Status());
        await admin.PostAsJsonAsync($"/api/v1/jobs/{running}/cancel", new { });
    }

    private static string SubmitBody(string path) => path switch
    {
        "/api/v1/jobs" => """{"type":"hold-then-scale","params":{"namespace":"staging"}}""",
        "/ops/jobs/pg-rebuild" => """{"namespace":"staging","statefulset":"postgres","ordinal":0}""",
        _ => throw new Xunit.Sdk.XunitException($"{path}: a submit route this test has no body for; add one"),
    };

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, Operation op, string url, string body)
    {
        var request = new HttpRequestMessage(new HttpMethod(op.Method), url);
        if (op.Mutating)
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        return client.SendAsync(request);
    }
}
