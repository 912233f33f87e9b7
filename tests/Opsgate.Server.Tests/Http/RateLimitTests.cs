using System.Diagnostics;
using System.Net;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Http;

public sealed class RateLimitTests
{
    [Fact]
    public async Task A_principal_past_its_burst_gets_429_with_Retry_After_while_others_and_health_are_not_limited()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            ["--RateLimit:Enabled=true", "--RateLimit:PermitsPerSecond=1", "--RateLimit:Burst=3"]);
        var (_, busyKey) = await server.CreateKeyAsync("busy", "viewer");
        var (_, quietKey) = await server.CreateKeyAsync("quiet", "viewer");
        var busy = server.Client(busyKey);

        // Three at once are allowed, then one a second: sent back to back, one of the first few must be refused.
        HttpResponseMessage? refused = null;
        var sent = 0;
        while (refused is null && sent < 20)
        {
            var response = await busy.GetAsync("/api/v1/audit?limit=1");
            sent++;
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                refused = response;
            else
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.NotNull(refused);
        Assert.InRange(sent, 4, 20);
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.True(retryAfter >= TimeSpan.FromSeconds(1), $"Retry-After: {retryAfter}");
        var detail = await Problem.AssertAsync(refused, HttpStatusCode.TooManyRequests);
        Assert.Contains("rate limit of 1 requests/s (burst 3) exceeded", detail, StringComparison.Ordinal);

        // Limits are per principal: another key still has its whole burst.
        var quiet = server.Client(quietKey);
        for (var i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.OK, (await quiet.GetAsync("/api/v1/audit?limit=1")).StatusCode);

        // Orchestrators' probes are never limited, whoever sends them.
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await busy.GetAsync("/health/live")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await server.Client().GetAsync("/health/live")).StatusCode);
        }

        // And the busy key gets through again once it waits as told.
        var waited = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            status = (await busy.GetAsync("/api/v1/audit?limit=1")).StatusCode;
            if (status == HttpStatusCode.TooManyRequests)
                await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
        while (status == HttpStatusCode.TooManyRequests && waited.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task The_limit_is_off_when_RateLimit_Enabled_is_false()
    {
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite,
            ["--RateLimit:Enabled=false", "--RateLimit:PermitsPerSecond=1", "--RateLimit:Burst=1"]);
        for (var i = 0; i < 10; i++)
            Assert.Equal(HttpStatusCode.OK, (await server.Admin.GetAsync("/api/v1/audit?limit=1")).StatusCode);
    }
}
