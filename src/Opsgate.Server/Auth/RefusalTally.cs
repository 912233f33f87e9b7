using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Opsgate.Server.Access;
using Opsgate.Server.Audit;

namespace Opsgate.Server.Auth;

/// <summary>The refusals anyone who can reach the port can cause, so they are tallied rather than written one by one.</summary>
internal enum RefusalKind
{
    /// <summary>401: no credential, or one that is not valid.</summary>
    Unauthenticated,
    /// <summary>429: past the rate limit.</summary>
    RateLimited,
}

/// <summary>
/// Keeps 401s and 429s from growing the audit log without limit while a flood or a brute force stays plain to see.
/// Per source (address, and the principal when a known one is rate limited) and UTC minute, the first refusal is
/// written at once by its request, with its detail; the rest are only counted here and written as one summary entry
/// (<see cref="UnauthenticatedAction"/> or <see cref="RateLimitedAction"/>, the count and the key prefixes tried in
/// <c>request_body</c>) once the minute is over, or when the host stops. So one address adds at most two entries a
/// minute per kind, however fast it sends.
/// <para>
/// Memory is bounded too: at most <see cref="MaxSources"/> sources a minute are told apart; refusals from any further
/// source go to one "other addresses" tally per kind (its first refusal is not written at once either, else a spread
/// flood would write one entry per address again), and each tally keeps at most <see cref="MaxKeyPrefixes"/> prefixes.
/// </para>
/// <para>
/// The counts live in this process: a crash loses the summaries of the current minute (the first entries are already
/// written). 403s are not tallied: only a caller holding a valid credential can cause one, and each is worth its entry.
/// </para>
/// </summary>
internal sealed partial class RefusalTally(AuditWriter writer, TimeProvider time, ILogger<RefusalTally> logger) : BackgroundService
{
    public const string UnauthenticatedAction = "auth.refused";
    public const string RateLimitedAction = "ratelimit.refused";
    public const int MaxSources = 10_000;
    public const int MaxKeyPrefixes = 20;

    /// <summary>
    /// How often closed minutes are looked for. A tick, not a sleep until the minute's end, so a clock that jumps (a
    /// test's, or a corrected system clock) is followed within a tick.
    /// </summary>
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private Dictionary<Source, Tally> _current = [];
    private DateTime _currentMinute = DateTime.MinValue;
    // Minutes that are over and not written yet; more than one only while the audit log is slower than a minute.
    private readonly List<(DateTime Minute, Dictionary<Source, Tally> Tallies)> _closed = [];
    private readonly SemaphoreSlim _flushing = new(1, 1);

    /// <summary>
    /// Counts the request's refusal; when it is its source's first this minute, writes its entry (with the key prefix
    /// tried, if any) before the answer goes out, as for any other refusal.
    /// </summary>
    public async Task AuditAsync(HttpContext context, RefusalKind kind, int status, string detail)
    {
        var principal = context.Principal();
        // A known principal is named by the entry; only an unidentified caller's key says who tried.
        var keyPrefix = principal is null ? ApiKeyAuthenticationHandler.TriedKeyPrefix(context.Request) : null;
        if (!Count(kind, context.Connection.RemoteIpAddress?.ToString(), principal, keyPrefix))
            return;
        context.Audit().SetServerBody(FirstBody(keyPrefix));
        await context.TryWriteAuditAsync(AuditStatus.Denied, status, detail);
    }

    /// <summary>
    /// Counts a refusal. True when it is its source's first in this minute: then the caller writes its entry itself,
    /// as for any other refusal; otherwise it is only counted, for the minute's summary.
    /// </summary>
    /// <param name="keyPrefix">The prefix of the API key tried, when an unidentified caller sent one (<see cref="ApiKeyAuthenticationHandler.TriedKeyPrefix"/>).</param>
    private bool Count(RefusalKind kind, string? address, Principal? principal, string? keyPrefix)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var source = new Source(kind, address, principal?.Id, Other: false);
        lock (_lock)
        {
            Rotate(now);
            if (_current.TryGetValue(source, out var tally))
            {
                tally.Add(now, keyPrefix);
                return false;
            }
            if (_current.Count < MaxSources)
            {
                _current[source] = new Tally(principal);
                return true;
            }
            var other = new Source(kind, null, null, Other: true);
            if (!_current.TryGetValue(other, out tally))
                _current[other] = tally = new Tally(null);
            tally.Add(now, keyPrefix);
            return false;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Tick, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                await FlushAsync(all: false);
        }
        catch (OperationCanceledException)
        {
            // Stopping: StopAsync writes what is left.
        }
    }

    /// <summary>The audit writer stops after this service (it was registered first), so the last summaries still get written.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await FlushAsync(all: true);
    }

    /// <summary>Writes the summaries of the minutes that are over (with <paramref name="all"/>, of the current one too).</summary>
    private async Task FlushAsync(bool all)
    {
        await _flushing.WaitAsync();
        try
        {
            List<(DateTime Minute, Dictionary<Source, Tally> Tallies)> due;
            lock (_lock)
            {
                Rotate(time.GetUtcNow().UtcDateTime);
                if (all && _current.Count > 0)
                {
                    _closed.Add((_currentMinute, _current));
                    _current = [];
                }
                due = [.. _closed];
                _closed.Clear();
            }
            foreach (var (minute, tallies) in due)
            {
                var counted = tallies.Where(t => t.Value.Count > 0).ToList();
                // Queued together, so the writer commits them in a few batches rather than one transaction each.
                var written = await Task.WhenAll(counted.Select(t => WriteAsync(Summary(minute, t.Key, t.Value))));
                var lost = counted.Where((_, i) => !written[i]).Sum(t => t.Value.Count);
                if (lost > 0)
                    LogSummariesLost(logger, lost, minute);
            }
        }
        finally
        {
            _flushing.Release();
        }
    }

    private async Task<bool> WriteAsync(AuditEntry entry)
    {
        try
        {
            await writer.AppendAsync(entry);
            return true;
        }
        catch (Exception e) when (e is AuditUnavailableException or ChannelClosedException)
        {
            // The writer logged why; the count is lost with the entry.
            return false;
        }
    }

    /// <summary>Moves the current minute's tallies aside once <paramref name="now"/> is past it. Caller holds the lock.</summary>
    private void Rotate(DateTime now)
    {
        var minute = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerMinute, DateTimeKind.Utc);
        // A clock set back keeps counting into the minute it had reached.
        if (minute <= _currentMinute)
            return;
        if (_current.Count > 0)
        {
            _closed.Add((_currentMinute, _current));
            _current = [];
        }
        _currentMinute = minute;
    }

    private static AuditEntry Summary(DateTime minute, Source source, Tally tally)
    {
        var (action, status, what) = source.Kind switch
        {
            RefusalKind.Unauthenticated => (UnauthenticatedAction, StatusCodes.Status401Unauthorized, "unauthenticated requests"),
            _ => (RateLimitedAction, StatusCodes.Status429TooManyRequests, "requests over the rate limit"),
        };
        var from = source.Other ? $"more than {MaxSources} other addresses" : source.Address ?? "an unknown address";
        return new AuditEntry
        {
            Actor = tally.Principal?.Name ?? "anonymous",
            SourceIp = source.Address,
            Action = action,
            RequestBody = tally.ToJson(minute, source.Other),
            Status = AuditStatus.Denied,
            HttpStatus = status,
            ErrorMessage = string.Create(CultureInfo.InvariantCulture,
                $"{tally.Count} more {what} from {from} in the minute from {minute:yyyy-MM-dd HH:mm} UTC were refused; the first was written on its own"),
            PrincipalId = tally.Principal?.Id,
            AuthMethod = tally.Principal?.AuthMethod,
        };
    }

    /// <summary>The first refusal's <c>request_body</c>: the key prefix tried, so a brute force shows from its first entry.</summary>
    private static string? FirstBody(string? keyPrefix)
    {
        if (keyPrefix is null)
            return null;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("key_prefix", keyPrefix);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private readonly record struct Source(RefusalKind Kind, string? Address, string? PrincipalId, bool Other);

    /// <summary>The refusals after a source's first in one minute. Changed only under <see cref="_lock"/>.</summary>
    private sealed class Tally(Principal? principal)
    {
        private readonly List<string> _prefixes = [];
        private long _unlistedKeys;
        private DateTime _first;
        private DateTime _last;

        public Principal? Principal { get; } = principal;
        public long Count { get; private set; }

        public void Add(DateTime now, string? keyPrefix)
        {
            if (Count++ == 0)
                _first = now;
            _last = now;
            if (keyPrefix is null || _prefixes.Contains(keyPrefix, StringComparer.Ordinal))
                return;
            if (_prefixes.Count < MaxKeyPrefixes)
                _prefixes.Add(keyPrefix);
            else
                _unlistedKeys++;
        }

        public string ToJson(DateTime minute, bool otherAddresses)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteNumber("refusals", Count);
                w.WriteString("minute", Format(minute));
                w.WriteString("first", Format(_first));
                w.WriteString("last", Format(_last));
                w.WriteStartArray("key_prefixes");
                foreach (var prefix in _prefixes)
                    w.WriteStringValue(prefix);
                w.WriteEndArray();
                // Refusals whose key's prefix did not fit in the list (a brute force tries a new one every time).
                if (_unlistedKeys > 0)
                    w.WriteNumber("refusals_with_unlisted_prefixes", _unlistedKeys);
                if (otherAddresses)
                    w.WriteBoolean("other_addresses", true);
                w.WriteEndObject();
            }
            return Encoding.UTF8.GetString(stream.ToArray());
        }

        private static string Format(DateTime t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
    }

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "The audit log could not take the summaries of {Refusals} refusals in the minute from {Minute:O}; they are only counted in http_requests_total")]
    private static partial void LogSummariesLost(ILogger logger, long refusals, DateTime minute);
}
