using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Opsgate.Server.Engine.Runbooks;
using Opsgate.Server.Persistence;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Engine;

/// <summary>
/// Secret parameter values of a job: a runbook parameter marked <c>secret: true</c>, and every value inside an
/// object parameter (Ansible extra vars) under a name <see cref="SecretVariables"/> calls secret. From the moment of
/// submit they live in the secret store as <c>job/&lt;id&gt;/params</c> (encrypted), and the job's stored parameters
/// hold <see cref="SecretVariables.Redacted"/> in their place, so the API, events, audit entries and notifications
/// can only ever show that. The runner puts the values back for the steps that use them (<see cref="RevealAsync"/>)
/// and masks them in whatever a step reports (<see cref="Mask"/>). Retry reuses them; event retention deletes them.
/// </summary>
internal sealed class JobSecrets(ISecretStore store, SecretVariables names, Database database)
{
    public static string SecretName(string jobId) => $"job/{jobId}/params";

    /// <summary>
    /// Moves the secret values out of <paramref name="parameters"/> (which is changed in place) into the secret store
    /// under the job's id. Call before the job's row is written: a job is never stored with a value in the clear.
    /// </summary>
    public async Task SealAsync(string jobId, Runbook? runbook, JsonObject parameters, CancellationToken ct)
    {
        var taken = Take(runbook, parameters);
        if (taken.Count > 0)
            await store.PutAsync(SecretName(jobId), Encoding.UTF8.GetBytes(taken.ToJsonString()), ct);
    }

    /// <summary>
    /// Seals a child job (a shard), whose parameters are its parent step's inputs with the parent's secret values in
    /// them, under any name: besides the secret-named values, every value holding one of <paramref name="parentSecrets"/>
    /// is taken, and the parent's values are kept for masking what the child reports.
    /// </summary>
    public async Task SealChildAsync(string childId, JsonObject parameters, IReadOnlyList<string> parentSecrets, CancellationToken ct)
    {
        var taken = Take(null, parameters);
        if (parentSecrets.Count > 0)
        {
            TakeHolding(parameters, [], parentSecrets, taken);
            foreach (var value in parentSecrets)
                taken.Add(new JsonObject { ["path"] = new JsonArray(), ["value"] = value }); // no path: masked only
        }
        if (taken.Count > 0)
            await store.PutAsync(SecretName(childId), Encoding.UTF8.GetBytes(taken.ToJsonString()), ct);
    }

    private static void TakeHolding(JsonObject obj, List<string> path, IReadOnlyList<string> values, JsonArray taken)
    {
        foreach (var (key, value) in obj.ToList())
        {
            if (value is JsonObject inner)
            {
                TakeHolding(inner, [.. path, key], values, taken);
                continue;
            }
            var text = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value?.ToJsonString();
            if (text is null || SecretVariables.IsRedacted(value) || !values.Any(secret => secret.Length > 0 && text.Contains(secret, StringComparison.Ordinal)))
                continue;
            taken.Add(Entry([.. path, key], value!));
            obj[key] = SecretVariables.Redacted;
        }
    }

    /// <summary>The secret values taken out of <paramref name="parameters"/> (in place): a list of {path, value}.</summary>
    public JsonArray Take(Runbook? runbook, JsonObject parameters)
    {
        var taken = new JsonArray();
        foreach (var (name, value) in parameters.ToList())
        {
            if (value is null || SecretVariables.IsRedacted(value))
                continue;
            if (runbook?.Parameter(name) is { Secret: true })
            {
                taken.Add(Entry([name], value));
                parameters[name] = SecretVariables.Redacted;
            }
            else if (value is JsonObject obj)
            {
                TakeNamed(obj, [name], taken);
            }
        }
        return taken;
    }

    private void TakeNamed(JsonObject obj, List<string> path, JsonArray taken)
    {
        foreach (var (key, value) in obj.ToList())
        {
            if (value is null || SecretVariables.IsRedacted(value))
                continue;
            if (names.IsSecret(key))
            {
                taken.Add(Entry([.. path, key], value));
                obj[key] = SecretVariables.Redacted;
            }
            else if (value is JsonObject inner)
            {
                TakeNamed(inner, [.. path, key], taken);
            }
        }
    }

    private static JsonObject Entry(List<string> path, JsonNode value) => new()
    {
        ["path"] = new JsonArray([.. path.Select(p => (JsonNode)p)]),
        ["value"] = value.DeepClone(),
    };

    /// <summary>
    /// The job's parameters with their secret values back in place, and the values (for <see cref="Mask"/>). A child job
    /// (a shard) has its own. Throws <see cref="StepFailedException"/> when the secret store lost them.
    /// </summary>
    public async Task<(JsonObject Parameters, IReadOnlyList<string> Values)> RevealAsync(JobRow job, JsonObject stored, CancellationToken ct)
    {
        // Steps render new trees from the parameters, so a job without secrets needs no copy of them.
        if (!HasRedacted(stored))
            return (stored, []);
        var parameters = stored.DeepClone().AsObject();
        var bytes = await store.GetAsync(SecretName(job.Id), ct)
            ?? throw new Steps.StepFailedException($"the secret parameters of job {job.Id} are missing from the secret store (restored apart from the database?); submit the job again");
        var values = new List<string>();
        foreach (var entry in JsonNode.Parse(bytes)!.AsArray())
        {
            var path = entry!["path"]!.AsArray().Select(p => p!.GetValue<string>()).ToList();
            var value = entry["value"]?.DeepClone();
            values.Add(value is JsonValue v && v.TryGetValue<string>(out var text) ? text : value?.ToJsonString() ?? "");
            if (path.Count == 0)
                continue; // a value kept for masking only (a shard's parent's)
            JsonNode? node = parameters;
            foreach (var step in path[..^1])
                node = node?[step];
            if (node is JsonObject parent)
                parent[path[^1]] = value;
        }
        return (parameters, values);
    }

    /// <summary>
    /// Seals the jobs stored before secrets were kept apart (migration 0013 marks them): their secret-named extra vars
    /// move to the secret store. Runs at start-up; each secret is stored before its job's row changes, so a crash in
    /// between loses nothing, and a job is only marked sealed with its new parameters.
    /// </summary>
    /// <param name="catalog">Passed, not injected: the catalog depends on the step kinds, and the Ansible step on this class.</param>
    public async Task SealStoredJobsAsync(RunbookCatalog catalog, CancellationToken ct)
    {
        while (true)
        {
            List<(string Id, string Type, string Params)> batch;
            await using (var connection = await database.OpenAsync(ct))
                batch = (await connection.QueryAsync<(string, string, string)>(
                    "SELECT id, type, params FROM jobs WHERE secrets_sealed = @no ORDER BY id LIMIT 500", new { no = false })).AsList();
            if (batch.Count == 0)
                return;
            var sealedParams = new List<(string Id, string Params)>(batch.Count);
            foreach (var (id, type, json) in batch)
            {
                var parameters = JsonNode.Parse(json) as JsonObject ?? [];
                await SealAsync(id, catalog.Find(type), parameters, ct);
                sealedParams.Add((id, parameters.ToJsonString()));
            }
            await using var write = await database.WriteAsync(ct);
            foreach (var (id, json) in sealedParams)
                await write.Connection.ExecuteAsync("UPDATE jobs SET params = @json, secrets_sealed = @yes WHERE id = @id", new { id, json, yes = true }, write.Transaction);
            await write.CommitAsync(ct);
        }
    }

    public Task DeleteAsync(string jobId, CancellationToken ct) => store.DeleteAsync(SecretName(jobId), ct);

    /// <summary>
    /// Replaces every occurrence of a secret value in <paramref name="text"/> by [REDACTED]: what a step reports
    /// (its detail, outputs, an error quoting its input) must not carry a value the job keeps secret. Values shorter
    /// than <see cref="MinMasked"/> characters are left alone, or every digit of a report could be masked.
    /// </summary>
    public static string? Mask(string? text, IReadOnlyList<string> values)
    {
        if (text is null || values.Count == 0)
            return text;
        foreach (var value in values)
        {
            if (value.Length >= MinMasked)
                text = text.Replace(value, SecretVariables.Redacted, StringComparison.Ordinal);
        }
        return text;
    }

    public const int MinMasked = 4;

    /// <summary>
    /// The values, and each as Python's <c>json.dumps</c> writes it inside a string, with and without ASCII escaping
    /// (the callback plugin's JSON escapes non-ASCII characters; Ansible's own output only quotes, backslashes and
    /// control characters), for masking what Ansible writes.
    /// </summary>
    public static IReadOnlyList<string> WithPythonJsonForms(IReadOnlyList<string> values)
    {
        var all = new List<string>(values);
        foreach (var value in values)
        {
            foreach (var ascii in (bool[])[true, false])
            {
                var escaped = PythonJson(value, ascii);
                if (!all.Contains(escaped, StringComparer.Ordinal))
                    all.Add(escaped);
            }
        }
        return all;
    }

    private static string PythonJson(string value, bool ascii)
    {
        var escaped = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            escaped.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                < ' ' => $"\\u{(int)c:x4}",
                > '~' when ascii => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return escaped.ToString();
    }

    /// <summary>As <see cref="Mask(string?, IReadOnlyList{string})"/>, for every string in a JSON tree (outputs, progress data); a new tree.</summary>
    public static JsonNode? Mask(JsonNode? node, IReadOnlyList<string> values) => values.Count == 0 ? node : node switch
    {
        JsonObject obj => new JsonObject(obj.Select(p => KeyValuePair.Create(p.Key, Mask(p.Value, values)))),
        JsonArray array => new JsonArray([.. array.Select(item => Mask(item, values))]),
        JsonValue v when v.TryGetValue<string>(out var text) => JsonValue.Create(Mask(text, values)),
        _ => node?.DeepClone(),
    };

    private static bool HasRedacted(JsonNode? node) => node switch
    {
        JsonObject obj => obj.Any(p => HasRedacted(p.Value)),
        JsonArray array => array.Any(HasRedacted),
        _ => SecretVariables.IsRedacted(node),
    };
}
