using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Opsgate.Server.Audit;
using Opsgate.Server.Hosting;
using Opsgate.Server.Observability;
using Polly;
using Polly.Retry;

namespace Opsgate.Server.Engine.Notifications;

/// <summary>
/// Announces finished jobs to the configured webhooks. <see cref="JobFinished"/> is called after the job's final
/// state is committed and only queues the id, so a slow or dead webhook never holds up, fails or changes a job.
/// A few delivery loops read the queue; each job is read back from the database (the queue carries no state that
/// could be stale) and posted to every webhook that wants it, with up to three attempts.
/// <para>
/// Each outcome goes to the audit log (<c>notify.sent</c> / <c>notify.failed</c>, the job's id, the webhook's name,
/// attempts, the error), the log, and <c>opsgate_notifications_total</c>; not to the job's event stream, whose
/// <c>job.finished</c> is its last event and carries the event count clients use to know they have them all.
/// </para>
/// <para>
/// The queue is in memory: a notification queued when the process dies is not sent. Delivery is at-least-once per
/// attempt (<c>X-Opsgate-Delivery</c> lets a receiver drop a repeat).
/// </para>
/// </summary>
internal sealed partial class JobNotifier : BackgroundService
{
    private const int Loops = 4;
    private const int Attempts = 3;

    private readonly Channel<string> _queue = Channel.CreateBounded<string>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.Wait });
    private readonly IReadOnlyList<Webhook> _webhooks;
    private readonly ResiliencePipeline _retry;
    private readonly JobStore _store;
    private readonly IHttpClientFactory _http;
    private readonly AuditWriter _audit;
    private readonly OpsgateMetrics _metrics;
    private readonly NotificationsOptions _options;
    private readonly ListeningAddress _listening;
    private readonly ILogger<JobNotifier> _logger;

    public JobNotifier(JobStore store, IHttpClientFactory http, AuditWriter audit, OpsgateMetrics metrics, IOptions<NotificationsOptions> options,
        ListeningAddress listening, TimeProvider time, ILogger<JobNotifier> logger)
    {
        (_store, _http, _audit, _metrics, _options, _listening, _logger) = (store, http, audit, metrics, options.Value, listening, logger);
        _webhooks = Webhook.From(_options);
        _retry = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = Attempts - 1,
                Delay = _options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = new PredicateBuilder().Handle<DeliveryException>(e => e.Retryable),
            })
            .Build();
    }

    /// <summary>Queues the announcement of a job whose final state is committed. Never throws, never waits.</summary>
    public void JobFinished(string jobId)
    {
        if (_webhooks.Count == 0)
            return;
        if (!_queue.Writer.TryWrite(jobId))
        {
            LogDropped(_logger, jobId);
            _metrics.Notification("*", "dropped");
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Jobs stop before this (it was registered first); what they queued is delivered while the host's shutdown allows.
        _queue.Writer.TryComplete();
        if (ExecuteTask is not null)
            await ExecuteTask.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await base.StopAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Loops).Select(_ => Task.Run(() => DeliverLoopAsync(stoppingToken), CancellationToken.None)));

    private async Task DeliverLoopAsync(CancellationToken stopping)
    {
        await foreach (var jobId in _queue.Reader.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                await AnnounceAsync(jobId, stopping);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                LogAnnounceFailed(_logger, jobId, e);
            }
        }
    }

    private async Task AnnounceAsync(string jobId, CancellationToken ct)
    {
        if (await _store.GetAsync(jobId, ct) is not var (job, _) || !JobStatus.IsFinished(job.Status))
            return;
        var url = JobUrl(job.Id);
        await Task.WhenAll(_webhooks.Where(w => w.Wants(job)).Select(w => DeliverAsync(w, job, url, ct)));
    }

    private async Task DeliverAsync(Webhook webhook, JobRow job, string jobUrl, CancellationToken ct)
    {
        var payload = WebhookPayloads.ForJob(webhook.Format, job, jobUrl);
        var delivery = Guid.NewGuid().ToString("N");
        var client = _http.CreateClient(HttpDelivery.ClientName);
        var attempts = 0;
        string? error = null;
        try
        {
            await _retry.ExecuteAsync(async token =>
            {
                attempts++;
                await HttpDelivery.PostAsync(client, webhook.Url, payload, webhook.Secret, delivery, _options.Timeout, token);
            }, ct);
        }
        catch (DeliveryException e)
        {
            error = e.Message;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            error = "Opsgate shut down before the webhook answered";
        }

        _metrics.Notification(webhook.Name, error is null ? "sent" : "failed");
        if (error is null)
            LogSent(_logger, webhook.Name, job.Id, job.Status, attempts);
        else
            LogNotSent(_logger, webhook.Name, job.Id, attempts, error);
        try
        {
            await _audit.AppendAsync(new AuditEntry
            {
                Actor = "opsgate",
                Action = error is null ? "notify.sent" : "notify.failed",
                ResourceKind = "webhook",
                ResourceName = webhook.Name,
                RequestBody = new JsonObject
                {
                    ["event"] = WebhookPayloads.JobFinished,
                    ["format"] = webhook.Format.Name(),
                    ["job_status"] = job.Status,
                    ["attempts"] = attempts,
                    ["delivery"] = delivery,
                }.ToJsonString(),
                Status = error is null ? AuditStatus.Success : AuditStatus.Error,
                ErrorMessage = error is null ? null : $"after {attempts} attempt{(attempts == 1 ? "" : "s")}: {error}",
                PrincipalId = "system:notifier",
                AuthMethod = "system",
                DryRun = job.DryRun,
                JobId = job.Id,
            });
        }
        catch (AuditUnavailableException e)
        {
            LogAuditFailed(_logger, webhook.Name, job.Id, e);
        }
    }

    private string JobUrl(string jobId)
    {
        var root = _options.PublicUrl is { Length: > 0 } configured
            ? configured
            : _listening.First;
        return $"{root.TrimEnd('/')}/api/v1/jobs/{jobId}";
    }

    [LoggerMessage(EventId = 650, Level = LogLevel.Information, Message = "Webhook {Webhook} was told job {JobId} {Status} (attempts: {Attempts})")]
    private static partial void LogSent(ILogger logger, string webhook, string jobId, string status, int attempts);

    [LoggerMessage(EventId = 651, Level = LogLevel.Warning, Message = "Webhook {Webhook} could not be told about job {JobId} after {Attempts} attempts: {Error}")]
    private static partial void LogNotSent(ILogger logger, string webhook, string jobId, int attempts, string error);

    [LoggerMessage(EventId = 652, Level = LogLevel.Warning, Message = "The notification queue is full or closed (shutting down); job {JobId} is not announced")]
    private static partial void LogDropped(ILogger logger, string jobId);

    [LoggerMessage(EventId = 653, Level = LogLevel.Error, Message = "Announcing job {JobId} failed")]
    private static partial void LogAnnounceFailed(ILogger logger, string jobId, Exception exception);

    [LoggerMessage(EventId = 654, Level = LogLevel.Error, Message = "The outcome of webhook {Webhook} for job {JobId} could not be written to the audit log")]
    private static partial void LogAuditFailed(ILogger logger, string webhook, string jobId, Exception exception);
}
