using Microsoft.Extensions.Options;

namespace Opsgate.Server.Engine.Notifications;

/// <summary>Where job outcomes are announced: <c>Notifications:Webhooks:&lt;name&gt;:...</c>. None by default.</summary>
internal sealed class NotificationsOptions
{
    public const string Section = "Notifications";

    /// <summary>Base URL people reach Opsgate at, for the job link in messages. Default: the first address Opsgate listens on.</summary>
    public string? PublicUrl { get; set; }

    /// <summary>Longest wait for one delivery attempt.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Wait before the second attempt; doubled before the third.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    public Dictionary<string, WebhookOptions> Webhooks { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

internal sealed class WebhookOptions
{
    public string? Url { get; set; }

    /// <summary><c>generic</c>, <c>slack</c>, <c>teams</c> or <c>zulip</c>.</summary>
    public string Format { get; set; } = "generic";

    /// <summary><c>finished</c> (every finished job) or <c>failed</c> (failed jobs only).</summary>
    public string On { get; set; } = "finished";

    /// <summary>HMAC-SHA256 key signing generic deliveries (<c>X-Opsgate-Signature</c>).</summary>
    public string? Secret { get; set; }

    /// <summary>Comma-separated job types (runbook names) to announce; empty: all.</summary>
    public string? Types { get; set; }
}

/// <summary>One configured webhook, parsed and checked.</summary>
internal sealed record Webhook(string Name, Uri Url, WebhookFormat Format, bool FailuresOnly, byte[]? Secret, IReadOnlySet<string>? Types)
{
    public bool Wants(JobRow job) =>
        JobStatus.IsFinished(job.Status)
        && (!FailuresOnly || job.Status == JobStatus.Failed)
        && (Types is null || Types.Contains(job.Type));

    /// <summary>The webhooks in <paramref name="options"/>; call after validation.</summary>
    public static IReadOnlyList<Webhook> From(NotificationsOptions options) =>
        options.Webhooks.OrderBy(w => w.Key, StringComparer.Ordinal).Select(w => new Webhook(
            w.Key,
            new Uri(w.Value.Url!),
            WebhookFormats.Parse(w.Value.Format)!.Value,
            w.Value.On.Equals("failed", StringComparison.OrdinalIgnoreCase),
            string.IsNullOrEmpty(w.Value.Secret) ? null : System.Text.Encoding.UTF8.GetBytes(w.Value.Secret),
            TypeList(w.Value.Types))).ToList();

    private static HashSet<string>? TypeList(string? types)
    {
        var list = (types ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return list.Length == 0 ? null : list.ToHashSet(StringComparer.Ordinal);
    }
}

/// <summary>Checked at start; each failure names the key to fix, and never echoes a URL or secret (either may hold a token).</summary>
internal sealed class NotificationsOptionsValidator : IValidateOptions<NotificationsOptions>
{
    public ValidateOptionsResult Validate(string? name, NotificationsOptions options)
    {
        const string S = NotificationsOptions.Section;
        if (options.PublicUrl is { Length: > 0 } publicUrl && !HttpDelivery.IsHttp(publicUrl))
            return Fail($"{S}:PublicUrl", "must be an absolute http or https URL");
        if (options.Timeout < TimeSpan.FromMilliseconds(100) || options.Timeout > TimeSpan.FromMinutes(5))
            return Fail($"{S}:Timeout", $"must be between 00:00:00.100 and 00:05:00, not {options.Timeout}");
        if (options.RetryDelay < TimeSpan.Zero || options.RetryDelay > TimeSpan.FromMinutes(5))
            return Fail($"{S}:RetryDelay", $"must be between 00:00:00 and 00:05:00, not {options.RetryDelay}");
        foreach (var (webhook, o) in options.Webhooks)
        {
            var key = $"{S}:Webhooks:{webhook}";
            // The name becomes a metric label and an audit resource name.
            if (webhook.Length > 63 || !webhook.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                return Fail(key, "must be named with at most 63 letters, digits, '-', '_' or '.'");
            if (string.IsNullOrWhiteSpace(o.Url))
                return Fail($"{key}:Url", "is required");
            if (!HttpDelivery.IsHttp(o.Url))
                return Fail($"{key}:Url", "must be an absolute http or https URL");
            if (WebhookFormats.Parse(o.Format) is not { } format)
                return Fail($"{key}:Format", $"must be generic, slack, teams or zulip, not '{o.Format}'");
            if (!o.On.Equals("finished", StringComparison.OrdinalIgnoreCase) && !o.On.Equals("failed", StringComparison.OrdinalIgnoreCase))
                return Fail($"{key}:On", $"must be finished or failed, not '{o.On}'");
            // Slack, Teams and Zulip carry their credential in the URL and ignore a signature: a secret there is a misunderstanding.
            if (!string.IsNullOrEmpty(o.Secret) && format != WebhookFormat.Generic)
                return Fail($"{key}:Secret", "is only used with Format generic (Slack, Teams and Zulip URLs carry their own credential)");
        }
        return ValidateOptionsResult.Success;
    }

    private static ValidateOptionsResult Fail(string key, string problem) => ValidateOptionsResult.Fail($"{key} {problem}");
}
