using System.Text;
using System.Text.Json.Nodes;

namespace Opsgate.Server.Engine.Notifications;

internal enum WebhookFormat { Generic, Slack, Teams, Zulip }

internal static class WebhookFormats
{
    public static WebhookFormat? Parse(string? format) => format?.ToLowerInvariant() switch
    {
        "generic" => WebhookFormat.Generic,
        "slack" => WebhookFormat.Slack,
        "teams" => WebhookFormat.Teams,
        "zulip" => WebhookFormat.Zulip,
        _ => null,
    };

    public static string Name(this WebhookFormat format) => format.ToString().ToLowerInvariant();
}

/// <summary>What is posted: the event name (the <c>X-Opsgate-Event</c> header) and a JSON body.</summary>
internal sealed record WebhookPayload(string Event, byte[] Body);

/// <summary>
/// The bodies each format expects. Generic is Opsgate's own JSON. Slack gets <c>{"text": ...}</c> in mrkdwn. Teams
/// gets a legacy MessageCard, which Teams incoming webhooks (and Workflows' "post to a channel when a webhook request
/// is received" template) accept. Zulip gets the same <c>{"text": ...}</c> as Slack, because it is meant for Zulip's
/// Slack-compatible incoming webhook (<c>/api/v1/external/slack_incoming?api_key=…&amp;stream=…&amp;topic=…</c>): that
/// integration needs nothing but its URL (so the <c>notify.webhook</c> step can use it too) and turns Slack's
/// <c>*bold*</c> and <c>&lt;url|text&gt;</c> into Zulip markdown.
/// </summary>
internal static class WebhookPayloads
{
    public const string JobFinished = "job.finished";
    public const string StepMessage = "step.notify";

    public static WebhookPayload ForJob(WebhookFormat format, JobRow job, string jobUrl)
    {
        JsonObject body = format switch
        {
            WebhookFormat.Generic => new JsonObject
            {
                ["event"] = JobFinished,
                ["job_id"] = job.Id,
                ["type"] = job.Type,
                ["status"] = job.Status,
                ["error"] = job.Error,
                ["actor"] = job.Actor,
                ["dry_run"] = job.DryRun,
                ["created_at"] = job.CreatedAt,
                ["started_at"] = job.StartedAt,
                ["finished_at"] = job.FinishedAt,
                ["url"] = jobUrl,
            },
            WebhookFormat.Teams => Card(
                $"Opsgate job {job.Type} {job.Status}",
                string.Join("\n\n", JobLines(job, $"[{job.Type} {job.Id}]({jobUrl})", b => $"**{b}**", s => s)),
                job.Status switch { JobStatus.Succeeded => "2EB886", JobStatus.Failed => "D00000", _ => "808080" }),
            _ => new JsonObject { ["text"] = string.Join("\n", JobLines(job, $"<{jobUrl}|{Slack(job.Type)} {job.Id}>", b => $"*{b}*", Slack)) },
        };
        return new WebhookPayload(JobFinished, Encoding.UTF8.GetBytes(body.ToJsonString()));
    }

    /// <summary>A runbook's own message (the <c>notify.webhook</c> step), sent as written.</summary>
    public static WebhookPayload ForMessage(WebhookFormat format, string message, string jobId, string step)
    {
        JsonObject body = format switch
        {
            WebhookFormat.Generic => new JsonObject { ["event"] = StepMessage, ["job_id"] = jobId, ["step"] = step, ["message"] = message },
            WebhookFormat.Teams => Card(Summary(message), message, null),
            _ => new JsonObject { ["text"] = message },
        };
        return new WebhookPayload(StepMessage, Encoding.UTF8.GetBytes(body.ToJsonString()));
    }

    private static IEnumerable<string> JobLines(JobRow job, string link, Func<string, string> bold, Func<string, string> text)
    {
        yield return $"Opsgate job {link} {bold(job.Status)}{(job.DryRun ? " (dry run)" : "")}";
        if (job.Actor is { Length: > 0 } actor)
            yield return $"requested by {text(actor)}";
        if (job.Error is { Length: > 0 } error)
            yield return $"> {text(error)}";
    }

    private static JsonObject Card(string summary, string text, string? color)
    {
        var card = new JsonObject
        {
            ["@type"] = "MessageCard",
            ["@context"] = "https://schema.org/extensions",
            ["summary"] = summary,
            ["text"] = text,
        };
        if (color is not null)
            card["themeColor"] = color;
        return card;
    }

    private static string Summary(string message)
    {
        var line = message.Split('\n', 2)[0];
        return line.Length <= 80 ? line : line[..79] + "…";
    }

    /// <summary>Slack treats &amp;, &lt; and &gt; as markup; text from jobs (errors, names) must not become links.</summary>
    private static string Slack(string text) =>
        text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
