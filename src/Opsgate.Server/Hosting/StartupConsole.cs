using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Opsgate.Server.Hosting;

/// <summary>
/// The lines Opsgate prints itself at start, to stdout and not through the logger: the generated bootstrap key must
/// reach the operator's terminal and no log sink. With <c>Logging:Json=true</c> each is one JSON object shaped like the
/// JSON console logger's entries (Timestamp, EventId, LogLevel, Category, Message) plus its own fields, so every stdout
/// line parses as JSON.
/// </summary>
internal sealed class StartupConsole(bool json, TimeProvider time)
{
    public const string Category = "Opsgate.Startup";

    /// <param name="text">What a terminal shows (text logs).</param>
    /// <param name="message">The JSON entry's Message; <paramref name="fields"/> become its other properties.</param>
    public void Print(string text, string message, params (string Name, string Value)[] fields)
    {
        if (!json)
        {
            Console.WriteLine(text);
            return;
        }
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("Timestamp", time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            writer.WriteNumber("EventId", 0);
            writer.WriteString("LogLevel", "Information");
            writer.WriteString("Category", Category);
            writer.WriteString("Message", message);
            foreach (var (name, value) in fields)
                writer.WriteString(name, value);
            writer.WriteEndObject();
        }
        // One write per line: the console logger writes from its own thread, and Console.Out keeps whole writes apart.
        Console.Out.Write(Encoding.UTF8.GetString(buffer.ToArray()) + Environment.NewLine);
    }
}

/// <summary>The first address the server listens on: the root of links in what it sends out when no public URL is configured.</summary>
internal sealed class ListeningAddress(IServer server)
{
    public string First => server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "";
}
