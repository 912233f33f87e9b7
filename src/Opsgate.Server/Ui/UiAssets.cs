using System.Collections.Frozen;
using System.Security.Cryptography;

namespace Opsgate.Server.Ui;

/// <summary>
/// The console's stylesheet and script, embedded in the binary (no wwwroot to ship, nothing from a CDN) and served
/// under a URL that carries their hash, so a browser may cache them for a year and still never runs a stale one.
/// </summary>
internal static class UiAssets
{
    private sealed record Asset(byte[] Bytes, string ContentType, string Url);

    private static readonly FrozenDictionary<string, Asset> ByName = Load();

    public static string CssUrl => ByName["opsgate.css"].Url;
    public static string JsUrl => ByName["opsgate.js"].Url;

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(UiAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var (name, type) in new[] { ("opsgate.css", "text/css; charset=utf-8"), ("opsgate.js", "text/javascript; charset=utf-8") })
        {
            using var stream = assembly.GetManifestResourceStream("ui/" + name) ?? throw new InvalidOperationException($"ui/{name} is not embedded");
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            var hash = Convert.ToHexStringLower(SHA256.HashData(bytes))[..12];
            assets[name] = new Asset(bytes, type, $"/ui/{hash}/{name}");
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public static void Map(WebApplication app) =>
        app.MapGet("/ui/{hash}/{name}", (string hash, string name, HttpContext http) =>
        {
            if (!ByName.TryGetValue(name, out var asset) || asset.Url != $"/ui/{hash}/{name}")
                return Results.NotFound();
            http.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
            return Results.Bytes(asset.Bytes, asset.ContentType);
        }).AllowAnonymous().ExcludeFromDescription().WithMetadata(UiSession.Marker);
}
