using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using KubeSim.Patching;
using KubeSim.Store;
using Microsoft.AspNetCore.Http;

namespace KubeSim.Api;

/// <summary>The REST verbs on resources: get, list, create, update, patch, delete, deletecollection, and the scale subresource.</summary>
internal sealed class ResourceHandlers(KubeStore store, WatchStreamer watches)
{
    public async Task HandleAsync(HttpContext ctx, ResourceRequest r)
    {
        var q = ctx.Request.Query;
        var dryRun = DryRun(q["dryRun"]);
        JsonNode result;
        var code = 200;
        switch (ctx.Request.Method)
        {
            case "GET" when r.Name is null && IsTrue(q["watch"]):
                await watches.StreamAsync(ctx, r, WantsTable(ctx));
                return;
            case "GET" when r.Name is null:
                result = List(ctx, r);
                break;
            case "GET":
                var obj = store.GetCore(r.Type, r.Namespace, r.Name) ?? throw KubeApiException.NotFound(r.Type, r.Name);
                result = r.Subresource == "scale" ? Scale.From(obj)
                    : WantsTable(ctx) ? TablePrinter.Table(r.Type, [obj], long.Parse(obj.Str("metadata", "resourceVersion") ?? "0", CultureInfo.InvariantCulture), q["includeObject"], store.Time.GetUtcNow())
                    : obj;
                break;
            case "POST" when r.Name is not null && r.Subresource == "token":
                result = store.Tokens.Request(r.Namespace!, r.Name, Manifests.ParseBody(await ReadBodyAsync(ctx), ctx.Request.ContentType) as JsonObject);
                code = 201;
                break;
            case "POST" when r.Name is null:
                result = store.CreateCore(r.Type, r.Namespace, await ReadObjectAsync(ctx), dryRun);
                code = 201;
                break;
            case "PUT" when r.Name is not null && r.Subresource == "scale":
                var scale = await ReadObjectAsync(ctx);
                result = Scale.From(store.PatchCore(r.Type, r.Namespace, r.Name, null, current => Scale.ApplyTo(r.Type, current, scale), dryRun));
                break;
            case "PUT" when r.Name is not null:
                result = store.ReplaceCore(r.Type, r.Namespace, r.Name, await ReadObjectAsync(ctx), r.Subresource, dryRun);
                break;
            case "PATCH" when r.Name is not null:
                (code, result) = await PatchAsync(ctx, r, dryRun);
                break;
            case "DELETE" when r.Name is not null:
                result = store.DeleteCore(r.Type, r.Namespace, r.Name, await ReadDeleteOptionsAsync(ctx), dryRun);
                break;
            case "DELETE":
                result = await DeleteCollectionAsync(ctx, r, dryRun);
                break;
            default:
                throw KubeApiException.MethodNotAllowed($"the server does not allow this method on the requested resource");
        }
        await KubeApi.WriteJsonAsync(ctx, code, result);
    }

    private JsonObject List(HttpContext ctx, ResourceRequest r)
    {
        var q = ctx.Request.Query;
        var (items, rv) = store.ListCore(r.Type, r.Namespace, LabelSelector.Parse(q["labelSelector"]), FieldSelector.Parse(q["fieldSelector"], r.Type));
        var offset = 0;
        if (q["continue"].ToString() is { Length: > 0 } token)
        {
            var parts = Encoding.UTF8.GetString(Convert.FromBase64String(token)).Split(':');
            offset = int.Parse(parts[1], CultureInfo.InvariantCulture);
        }
        string? next = null;
        var remaining = 0L;
        if (int.TryParse(q["limit"], out var limit) && limit > 0 && items.Count - offset > limit)
        {
            next = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{rv}:{offset + limit}"));
            remaining = items.Count - offset - limit;
            items = items.Skip(offset).Take(limit).ToList();
        }
        else
        {
            items = items.Skip(offset).ToList();
        }
        if (WantsTable(ctx))
        {
            var table = TablePrinter.Table(r.Type, items, rv, q["includeObject"], store.Time.GetUtcNow());
            if (next is not null) table.Meta()["continue"] = next;
            return table;
        }
        var metadata = new JsonObject { ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture) };
        if (next is not null)
        {
            metadata["continue"] = next;
            metadata["remainingItemCount"] = remaining;
        }
        return new JsonObject
        {
            ["kind"] = r.Type.Kind + "List",
            ["apiVersion"] = r.Type.ApiVersion,
            ["metadata"] = metadata,
            ["items"] = new JsonArray(items.Select(i => (JsonNode)i).ToArray()),
        };
    }

    private async Task<(int, JsonNode)> PatchAsync(HttpContext ctx, ResourceRequest r, bool dryRun)
    {
        var contentType = ctx.Request.ContentType ?? "";
        var body = await ReadBodyAsync(ctx);
        if (contentType.StartsWith(Patches.Apply, StringComparison.OrdinalIgnoreCase) && r.Subresource is null)
        {
            // Server-side apply, approximated: create when absent, else a strategic merge of the applied
            // configuration (no field ownership tracking).
            var applied = Manifests.ParseBody(body, contentType) as JsonObject ?? throw KubeApiException.BadRequest("apply patch must be an object");
            if (store.GetCore(r.Type, r.Namespace, r.Name!) is null) return (201, store.CreateCore(r.Type, r.Namespace, applied, dryRun));
            return (200, store.PatchCore(r.Type, r.Namespace, r.Name!, null, current => StrategicMergePatch.Apply(current, applied), dryRun));
        }
        if (r.Subresource == "scale")
        {
            return (200, Scale.From(store.PatchCore(r.Type, r.Namespace, r.Name!, null,
                current => Scale.ApplyTo(r.Type, current, Patches.ApplyTo(Scale.From(current), contentType, body)), dryRun)));
        }
        return (200, store.PatchCore(r.Type, r.Namespace, r.Name!, r.Subresource, current => Patches.ApplyTo(current, contentType, body), dryRun));
    }

    private async Task<JsonObject> DeleteCollectionAsync(HttpContext ctx, ResourceRequest r, bool dryRun)
    {
        var q = ctx.Request.Query;
        var options = await ReadDeleteOptionsAsync(ctx);
        var (items, _) = store.ListCore(r.Type, r.Namespace, LabelSelector.Parse(q["labelSelector"]), FieldSelector.Parse(q["fieldSelector"], r.Type));
        var deleted = new JsonArray();
        foreach (var item in items)
        {
            try
            {
                deleted.Add(store.DeleteCore(r.Type, item.Namespace(), item.Name(), options, dryRun));
            }
            catch (KubeApiException e) when (e.Code == 404)
            {
                // Gone between the list and the delete: that is what was asked.
            }
        }
        return new JsonObject
        {
            ["kind"] = r.Type.Kind + "List",
            ["apiVersion"] = r.Type.ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = store.ResourceVersion.ToString(CultureInfo.InvariantCulture) },
            ["items"] = deleted,
        };
    }

    private static async Task<DeleteOptions> ReadDeleteOptionsAsync(HttpContext ctx)
    {
        var q = ctx.Request.Query;
        var body = Manifests.ParseBody(await ReadBodyAsync(ctx), ctx.Request.ContentType) as JsonObject;
        var grace = body.Long("gracePeriodSeconds");
        if (long.TryParse(q["gracePeriodSeconds"], out var g)) grace = g;
        var policy = q["propagationPolicy"].ToString() is { Length: > 0 } p ? p : body.Str("propagationPolicy");
        if (body.Bool("orphanDependents") == true) policy ??= "Orphan";
        return new DeleteOptions(grace, policy, body.Str("preconditions", "uid"), body.Str("preconditions", "resourceVersion"));
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext ctx) =>
        Manifests.ParseBody(await ReadBodyAsync(ctx), ctx.Request.ContentType) as JsonObject
            ?? throw KubeApiException.BadRequest("the request body must be an object");

    private static async Task<string> ReadBodyAsync(HttpContext ctx)
    {
        if (ctx.Request.ContentType?.Contains("protobuf", StringComparison.OrdinalIgnoreCase) == true)
        {
            throw new KubeApiException(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (KubeSim does not decode protobuf; got {ctx.Request.ContentType})");
        }
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        return await reader.ReadToEndAsync(ctx.RequestAborted);
    }

    internal static bool WantsTable(HttpContext ctx) => ctx.Request.Headers.Accept.ToString().Contains("as=Table", StringComparison.Ordinal);

    internal static bool IsTrue(string? value) => value is "true" or "1" or "True";

    private static bool DryRun(Microsoft.Extensions.Primitives.StringValues values)
    {
        foreach (var v in values)
        {
            if (v != "All") throw KubeApiException.BadRequest($"dryRun: Unsupported value: \"{v}\": supported values: \"All\"");
        }
        return values.Count > 0;
    }
}
