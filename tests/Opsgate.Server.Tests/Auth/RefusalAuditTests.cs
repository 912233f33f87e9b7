using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using Microsoft.AspNetCore.Http;
using Opsgate.Server.Audit;
using Opsgate.Server.Auth;
using Opsgate.Server.Engine;
using Opsgate.Server.Tests.Infrastructure;

namespace Opsgate.Server.Tests.Auth;

/// <summary>
/// 401s and 429s, which anyone who reaches the port can cause, are audited per address and minute: the first at once,
/// the rest as one summary when the minute is over; 403s keep one entry each.
/// </summary>
public sealed class RefusalAuditTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 1, 12, 0, 10, TimeSpan.Zero);
    private static readonly string[] Prefixes = ["og_aaaa111", "og_bbbb222", "og_cccc333"];
    /// <summary>A short secret sent as a key by mistake: only its first half may be kept.</summary>
    private const string ShortSecret = "pw-secret-xyz";
    private const string ShortSecretPrefix = "pw-sec";
    /// <summary>Every prefix the bad keys have, in ordinal order.</summary>
    private static readonly string[] Tried = [.. Prefixes, ShortSecretPrefix];

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_flood_of_bad_keys_from_one_address_leaves_one_entry_at_once_and_one_summary_a_minute(Provider provider)
    {
        var clock = new ManualClock(Start);
        await using var server = await OpsgateServer.StartAsync(provider, configureServices: s => s.AddSingleton<TimeProvider>(clock));

        // Authenticated refusals keep one entry each.
        var (_, viewerKey) = await server.CreateKeyAsync("curious-viewer", "viewer");
        var viewer = server.Client(viewerKey);
        for (var i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync("/api/v1/apikeys", new { name = "x", role = "admin" })).StatusCode);
        var forbidden = await EntriesAsync(server, "actor=curious-viewer");
        Assert.Equal(3, forbidden.Count);
        Assert.All(forbidden, e => Assert.Equal(403, e.GetProperty("http_status").GetInt32()));

        var keys = BadKeys(2_000);
        var statuses = await FloodAsync(server.Client(), keys);
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.Unauthorized, s));

        // While the minute lasts, only the first refusal is written, with its detail and the prefix of its key.
        var first = Assert.Single(await EntriesAsync(server, "actor=anonymous"));
        Assert.Equal("denied", first.GetProperty("status").GetString());
        Assert.Equal(401, first.GetProperty("http_status").GetInt32());
        Assert.StartsWith("GET /api/v1/jobs", first.GetProperty("action").GetString(), StringComparison.Ordinal);
        Assert.Equal("the API key is not valid", first.GetProperty("error_message").GetString());
        Assert.Contains(first.GetProperty("request_body").GetProperty("key_prefix").GetString(), Tried);

        // Once the minute is over, the other 1,999 are one summary entry.
        clock.Advance(TimeSpan.FromMinutes(1));
        var summary = await SummaryAsync(server, RefusalTally.UnauthenticatedAction);
        Assert.Equal("anonymous", summary.GetProperty("actor").GetString());
        Assert.Equal("127.0.0.1", summary.GetProperty("source_ip").GetString());
        Assert.Equal("denied", summary.GetProperty("status").GetString());
        Assert.Equal(401, summary.GetProperty("http_status").GetInt32());
        var body = summary.GetProperty("request_body");
        Assert.Equal(keys.Count - 1, body.GetProperty("refusals").GetInt64());
        Assert.Equal("2026-11-01T12:00:00.000Z", body.GetProperty("minute").GetString());
        Assert.Equal(Tried, body.GetProperty("key_prefixes").EnumerateArray().Select(p => p.GetString()!).Order(StringComparer.Ordinal).ToArray());
        var anonymous = await EntriesAsync(server, "actor=anonymous");
        Assert.Equal(2, anonymous.Count);

        // No key is kept whole, the short secret included.
        var all = string.Join('\n', (await EntriesAsync(server, "")).Select(e => e.GetRawText()));
        Assert.DoesNotContain(ShortSecret, all, StringComparison.Ordinal);
        Assert.DoesNotContain(keys.First(k => k != ShortSecret), all, StringComparison.Ordinal);

        // The metrics count every refusal, one per request.
        var scrape = await server.Client().GetStringAsync("/metrics");
        Assert.Equal(keys.Count, Scrape.Sum(scrape, "http_requests_total{endpoint=\"/api/v1/jobs\",method=\"GET\",status=\"401\"}"));

        // The next minute starts over: its first refusal is written at once again.
        await FloodAsync(server.Client(), BadKeys(50));
        Assert.Equal(3, (await EntriesAsync(server, "actor=anonymous")).Count);
        await AssertChainVerifiesAsync(server);

        // Stopping writes the summary of the minute that has not ended.
        await server.App.StopAsync();
        await using var db = await server.OpenDatabaseAsync();
        var bodies = (await db.QueryAsync<string>("SELECT request_body FROM audit_log WHERE action = @action ORDER BY id",
            new { action = RefusalTally.UnauthenticatedAction })).ToList();
        Assert.Equal(2, bodies.Count);
        Assert.Equal(49, JsonDocument.Parse(bodies[1]).RootElement.GetProperty("refusals").GetInt64());
        var verification = await server.App.Services.GetRequiredService<AuditLog>().VerifyAsync(CancellationToken.None);
        Assert.True(verification.Ok, verification.Reason);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_flood_past_the_rate_limit_is_audited_the_same_way(Provider provider)
    {
        var clock = new ManualClock(Start);
        await using var server = await OpsgateServer.StartAsync(provider,
            ["--RateLimit:Enabled=true", "--RateLimit:PermitsPerSecond=2", "--RateLimit:Burst=5"],
            s => s.AddSingleton<TimeProvider>(clock));

        // Unauthenticated callers are limited per address; what gets past the limit is a 401.
        var keys = BadKeys(2_000);
        var statuses = await FloodAsync(server.Client(), keys);
        var unauthorized = statuses.Count(s => s == HttpStatusCode.Unauthorized);
        var limited = statuses.Count(s => s == HttpStatusCode.TooManyRequests);
        Assert.Equal(keys.Count, unauthorized + limited);
        Assert.InRange(unauthorized, 5, 200);

        var firsts = await EntriesAsync(server, "actor=anonymous");
        Assert.Equal(2, firsts.Count);
        var firstLimited = Assert.Single(firsts, e => e.GetProperty("http_status").GetInt32() == 429);
        Assert.Equal("denied", firstLimited.GetProperty("status").GetString());
        Assert.Contains("rate limit of 2 requests/s (burst 5) exceeded", firstLimited.GetProperty("error_message").GetString(), StringComparison.Ordinal);
        Assert.Contains(firstLimited.GetProperty("request_body").GetProperty("key_prefix").GetString(), Tried);

        clock.Advance(TimeSpan.FromMinutes(1));
        var summary = await SummaryAsync(server, RefusalTally.RateLimitedAction);
        Assert.Equal("127.0.0.1", summary.GetProperty("source_ip").GetString());
        Assert.Equal(429, summary.GetProperty("http_status").GetInt32());
        Assert.Equal(limited - 1, summary.GetProperty("request_body").GetProperty("refusals").GetInt64());
        Assert.Equal(Tried,
            summary.GetProperty("request_body").GetProperty("key_prefixes").EnumerateArray().Select(p => p.GetString()!).Order(StringComparer.Ordinal).ToArray());
        var unauthenticated = await SummaryAsync(server, RefusalTally.UnauthenticatedAction);
        Assert.Equal(unauthorized - 1, unauthenticated.GetProperty("request_body").GetProperty("refusals").GetInt64());
        Assert.Equal(4, (await EntriesAsync(server, "actor=anonymous")).Count);

        var scrape = await server.Client().GetStringAsync("/metrics");
        Assert.Equal(limited, Scrape.Sum(scrape, "http_requests_total{endpoint=\"/api/v1/jobs\",method=\"GET\",status=\"429\"}"));
        Assert.Equal(unauthorized, Scrape.Sum(scrape, "http_requests_total{endpoint=\"/api/v1/jobs\",method=\"GET\",status=\"401\"}"));
        await AssertChainVerifiesAsync(server);
    }

    [Fact]
    public async Task Past_the_bound_on_addresses_the_rest_share_one_summary()
    {
        var clock = new ManualClock(Start);
        await using var server = await OpsgateServer.StartAsync(Provider.Sqlite, configureServices: s => s.AddSingleton<TimeProvider>(clock));
        var tally = server.App.Services.GetRequiredService<RefusalTally>();
        // Loopback HTTP has one address; the tally is fed requests from many, as the denial handler would.
        const int beyond = 300;
        var addresses = Enumerable.Range(0, RefusalTally.MaxSources + beyond)
            .Select(i => new IPAddress([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i])).ToList();
        foreach (var chunk in addresses.Chunk(1_000))
        {
            await Task.WhenAll(chunk.Select(address =>
            {
                var context = new DefaultHttpContext { RequestServices = server.App.Services };
                context.Connection.RemoteIpAddress = address;
                context.Request.Method = "GET";
                context.Request.Path = "/api/v1/jobs";
                context.Request.Headers["X-API-Key"] = Prefixes[0] + "0123456789abcdef0123456789abcdef";
                return tally.AuditAsync(context, Server.Auth.RefusalKind.Unauthenticated, 401, "the API key is not valid");
            }));
        }

        clock.Advance(TimeSpan.FromMinutes(1));
        var summary = await SummaryAsync(server, RefusalTally.UnauthenticatedAction);
        var body = summary.GetProperty("request_body");
        Assert.Equal(beyond, body.GetProperty("refusals").GetInt64());
        Assert.True(body.GetProperty("other_addresses").GetBoolean());
        Assert.False(summary.TryGetProperty("source_ip", out var ip) && ip.ValueKind != JsonValueKind.Null, "the shared summary names no address");
        Assert.Equal([Prefixes[0]], body.GetProperty("key_prefixes").EnumerateArray().Select(p => p.GetString()!).ToArray());
        var verify = await server.Admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify");
        Assert.Equal(RefusalTally.MaxSources + 1, verify.GetProperty("entries").GetInt64());
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
    }

    /// <summary>Keys with a few prefixes and random tails, and now and then a short secret.</summary>
    private static List<string> BadKeys(int count) =>
        [.. Enumerable.Range(0, count).Select(i => i % 100 == 99 ? ShortSecret : Prefixes[i % Prefixes.Length] + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)))];

    /// <summary>Sends one GET per key from a few concurrent loops over one loopback connection pool; bounded in time.</summary>
    private static async Task<HttpStatusCode[]> FloodAsync(HttpClient client, List<string> keys)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var statuses = new HttpStatusCode[keys.Count];
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < keys.Count)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/jobs");
                request.Headers.Add("X-API-Key", keys[i]);
                using var response = await client.SendAsync(request, deadline.Token);
                statuses[i] = response.StatusCode;
            }
        }));
        return statuses;
    }

    /// <summary>The newest 1,000 entries matching <paramref name="query"/>; waits out the admin's own rate limit if the test set one.</summary>
    private static async Task<List<JsonElement>> EntriesAsync(OpsgateServer server, string query)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var response = await server.Admin.GetAsync("/api/v1/audit?limit=1000&" + query);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < 10)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                continue;
            }
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var page = await response.Content.ReadFromJsonAsync<JsonElement>();
            return [.. page.GetProperty("items").EnumerateArray()];
        }
    }

    /// <summary>The one summary entry with <paramref name="action"/>, once the background flush (a tick a second) wrote it.</summary>
    private static async Task<JsonElement> SummaryAsync(OpsgateServer server, string action)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            // Anonymous only: in the rate limit test the admin's own reads may be limited too.
            var entries = await EntriesAsync(server, "actor=anonymous&action=" + action);
            if (entries.Count > 0 || waited.Elapsed > TimeSpan.FromSeconds(20))
                return Assert.Single(entries);
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }
    }

    private static async Task AssertChainVerifiesAsync(OpsgateServer server)
    {
        for (var attempt = 0; ; attempt++)
        {
            // In the rate limit test the admin's own reads may be limited too: wait as a client would.
            using var response = await server.Admin.GetAsync("/api/v1/audit/verify");
            if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < 10)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                continue;
            }
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {body}");
            var verify = JsonDocument.Parse(body).RootElement;
            Assert.True(verify.GetProperty("ok").GetBoolean(), body);
            return;
        }
    }
}
