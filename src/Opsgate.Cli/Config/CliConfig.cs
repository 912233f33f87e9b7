using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Cli.Config;

internal sealed record CliContext(string Name, string Server, string? Key);

/// <summary>
/// ~/.config/opsgate/config.yaml: named contexts (server and API key) and the current one, like a kubeconfig. It
/// holds keys, so it is written with mode 0600 (and its directory 0700) and replaced atomically.
/// </summary>
internal sealed class CliConfig
{
    private const long MaxBytes = 1 << 20;

    public string? CurrentContext { get; set; }
    public List<CliContext> Contexts { get; } = [];

    /// <summary>OPSGATE_CONFIG, else $XDG_CONFIG_HOME/opsgate/config.yaml, else $HOME/.config/opsgate/config.yaml.</summary>
    public static string PathFor(CliIo io)
    {
        if (io.Env("OPSGATE_CONFIG") is { Length: > 0 } explicitPath)
            return explicitPath;
        var configHome = io.Env("XDG_CONFIG_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(io.Env("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(configHome, "opsgate", "config.yaml");
    }

    public static CliConfig Load(string path)
    {
        var config = new CliConfig();
        if (!File.Exists(path))
            return config;
        if (new FileInfo(path).Length > MaxBytes)
            throw new UsageException($"{path}: larger than 1 MiB, not an opsctl config");
        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlException e)
        {
            throw new UsageException($"{path}: not valid YAML ({e.Start.Line}:{e.Start.Column}: {e.Message})");
        }
        if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            return config;
        config.CurrentContext = Scalar(root, "current-context");
        if (root.Children.TryGetValue(new YamlScalarNode("contexts"), out var contexts) && contexts is YamlSequenceNode list)
        {
            foreach (var item in list.Children.OfType<YamlMappingNode>())
            {
                var name = Scalar(item, "name");
                var server = Scalar(item, "server");
                if (name is not null && server is not null)
                    config.Contexts.Add(new CliContext(name, server, Scalar(item, "key")));
            }
        }
        return config;
    }

    public void Save(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(dir);
            else
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        // Written beside the target with 0600 from its creation, then renamed over it: the key is never readable by others,
        // not even for a moment, and a crash leaves the old file whole.
        var temp = Path.Combine(dir, $".config.yaml.{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            var emitter = new Emitter(writer);
            emitter.Emit(new StreamStart());
            emitter.Emit(new DocumentStart());
            emitter.Emit(new MappingStart());
            if (CurrentContext is not null)
                Pair(emitter, "current-context", CurrentContext);
            emitter.Emit(new Scalar("contexts"));
            emitter.Emit(new SequenceStart(null, null, false, SequenceStyle.Block));
            foreach (var context in Contexts)
            {
                emitter.Emit(new MappingStart());
                Pair(emitter, "name", context.Name);
                Pair(emitter, "server", context.Server);
                if (context.Key is not null)
                    Pair(emitter, "key", context.Key);
                emitter.Emit(new MappingEnd());
            }
            emitter.Emit(new SequenceEnd());
            emitter.Emit(new MappingEnd());
            emitter.Emit(new DocumentEnd(true));
            emitter.Emit(new StreamEnd());
        }
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }

    public CliContext? Find(string name) => Contexts.FirstOrDefault(c => c.Name == name);

    public void Upsert(CliContext context)
    {
        var i = Contexts.FindIndex(c => c.Name == context.Name);
        if (i >= 0)
            Contexts[i] = context;
        else
            Contexts.Add(context);
    }

    private static void Pair(Emitter emitter, string key, string value)
    {
        emitter.Emit(new Scalar(key));
        emitter.Emit(new Scalar(null, null, value, ScalarStyle.DoubleQuoted, false, true));
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode { Value: { } v } ? v : null;
}
