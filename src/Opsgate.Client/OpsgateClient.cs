using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace Opsgate.Client;

/// <summary>
/// A typed client of Opsgate's HTTP API (/api/v1), shared by opsctl and the tests. Errors come back as
/// <see cref="OpsgateApiException"/> with the server's problem+json; a server that cannot be reached as
/// <see cref="HttpRequestException"/> (or <see cref="TimeoutException"/> when it does not answer in time).
/// </summary>
public sealed partial class OpsgateClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;

    /// <param name="server">The server's base address, e.g. http://127.0.0.1:8080.</param>
    /// <param name="apiKey">Sent as X-API-Key; null sends no credential.</param>
    public OpsgateClient(Uri server, string? apiKey, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        // The event stream stays open for as long as a job runs: timeouts are per request (RequestTimeout), not per client.
        _http = new HttpClient(handler ?? new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) }, disposeHandler: true)
        {
            BaseAddress = server,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        if (apiKey is not null)
            _http.DefaultRequestHeaders.Add("X-API-Key", apiKey);
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("opsgate-client", typeof(OpsgateClient).Assembly.GetName().Version?.ToString(3)));
        _ownsHttp = true;
    }

    /// <summary>Over an HttpClient the caller configured (base address, credential, timeout).</summary>
    public OpsgateClient(HttpClient http)
    {
        _http = http ?? throw new ArgumentNullException(nameof(http));
        _ownsHttp = false;
    }

    public Uri? BaseAddress => _http.BaseAddress;

    /// <summary>How long a plain request (not an event stream) may take before <see cref="TimeoutException"/>.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public async Task<IReadOnlyList<Cluster>> ListClustersAsync(CancellationToken ct = default) =>
        (await GetAsync("api/v1/clusters", OpsgateJson.Default.ClusterList, ct)).Items;

    /// <summary>Every cluster's status as the monitor last saw it.</summary>
    public async Task<IReadOnlyList<Cluster>> ClusterStatusAsync(CancellationToken ct = default) =>
        (await GetAsync("api/v1/clusters/status", OpsgateJson.Default.ClusterStatusList, ct)).Clusters;

    /// <summary>Probes one cluster now.</summary>
    public Task<Cluster> ClusterStatusAsync(string name, CancellationToken ct = default) =>
        GetAsync($"api/v1/clusters/{Uri.EscapeDataString(name)}/status", OpsgateJson.Default.Cluster, ct);

    /// <summary>Runbooks with their parameter schemas and steps.</summary>
    public Task<IReadOnlyList<Runbook>> ListRunbooksAsync(CancellationToken ct = default) =>
        GetAsync("api/v1/runbooks", OpsgateJson.Default.IReadOnlyListRunbook, ct);

    /// <summary>One page of jobs, newest first, without their steps; pass <see cref="JobPage.NextCursor"/> back as the cursor.</summary>
    public Task<JobPage> ListJobsAsync(JobQuery? query = null, CancellationToken ct = default)
    {
        var q = new StringBuilder("api/v1/jobs");
        var sep = '?';
        void Add(string name, string? value)
        {
            if (value is null)
                return;
            q.Append(sep).Append(name).Append('=').Append(Uri.EscapeDataString(value));
            sep = '&';
        }
        Add("status", query?.Status);
        Add("type", query?.Type);
        Add("limit", query?.Limit?.ToString(CultureInfo.InvariantCulture));
        Add("cursor", query?.Cursor);
        return GetAsync(q.ToString(), OpsgateJson.Default.JobPage, ct);
    }

    public Task<Job> GetJobAsync(string id, CancellationToken ct = default) =>
        GetAsync(JobPath(id), OpsgateJson.Default.Job, ct);

    /// <summary>Submits a run of <paramref name="runbook"/>; answers at once with the stored (pending) job.</summary>
    public Task<Job> SubmitJobAsync(string runbook, JsonObject? parameters = null, bool dryRun = false, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, "api/v1/jobs", JsonContent.Create(new SubmitJobBody(runbook, parameters ?? [], dryRun), WireJson.Default.SubmitJobBody),
            OpsgateJson.Default.Job, ct);

    public Task<JobCommandResult> CancelJobAsync(string id, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, JobPath(id) + "/cancel", null, OpsgateJson.Default.JobCommandResult, ct);

    /// <summary>Runs a failed job again from its failed step (in place).</summary>
    public Task<JobCommandResult> RetryJobAsync(string id, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, JobPath(id) + "/retry", null, OpsgateJson.Default.JobCommandResult, ct);

    /// <summary>Starts a new job that runs an Ansible job's playbook again on its failed and unreachable hosts only.</summary>
    public Task<Job> RetryFailedHostsAsync(string id, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, JobPath(id) + "/retry", JsonContent.Create(new RetryBody("failed"), WireJson.Default.RetryBody), OpsgateJson.Default.Job, ct);

    public Task<JobCommandResult> ApproveJobAsync(string id, string? comment = null, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, JobPath(id) + "/approve", JsonContent.Create(new DecisionBody(comment), WireJson.Default.DecisionBody), OpsgateJson.Default.JobCommandResult, ct);

    public Task<JobCommandResult> RejectJobAsync(string id, string? comment = null, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Post, JobPath(id) + "/reject", JsonContent.Create(new DecisionBody(comment), WireJson.Default.DecisionBody), OpsgateJson.Default.JobCommandResult, ct);

    /// <summary>Recomputes the audit log's hash chain on the server.</summary>
    public Task<AuditVerification> VerifyAuditAsync(CancellationToken ct = default) =>
        GetAsync("api/v1/audit/verify", OpsgateJson.Default.AuditVerification, ct);

    private static string JobPath(string id) => "api/v1/jobs/" + Uri.EscapeDataString(id);

    private Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, type, ct);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? body, JsonTypeInfo<T> type, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RequestTimeout);
        using var request = new HttpRequestMessage(method, path) { Content = body };
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            await ThrowIfErrorAsync(response, timeout.Token);
            return await response.Content.ReadFromJsonAsync(type, timeout.Token)
                ?? throw new OpsgateApiException(response.StatusCode, "Empty answer", $"{method} /{path} answered no JSON");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"{method} /{path}: no answer from {_http.BaseAddress} within {RequestTimeout.TotalSeconds:0} s");
        }
    }

    internal static async Task ThrowIfErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
            return;
        var text = await response.Content.ReadAsStringAsync(ct);
        ProblemBody? problem = null;
        if (response.Content.Headers.ContentType?.MediaType is "application/problem+json" or "application/json")
        {
            try
            {
                problem = JsonSerializer.Deserialize(text, WireJson.Default.ProblemBody);
            }
            catch (JsonException)
            {
                // Not the problem+json it said it was: the raw text below says what came back.
            }
        }
        var title = problem?.Title ?? response.ReasonPhrase ?? response.StatusCode.ToString();
        var detail = problem is not null ? problem.Detail : text.Length == 0 ? null : text.Length <= 500 ? text.Trim() : text[..500].Trim() + "…";
        throw new OpsgateApiException(response.StatusCode, title, detail, problem?.Errors, problem?.RequestId);
    }

    public void Dispose()
    {
        if (_ownsHttp)
            _http.Dispose();
    }
}
