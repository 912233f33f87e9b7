using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Hosting;

/// <summary>
/// The optional YAML settings file (<c>--config FILE</c> or <c>OPSGATE_CONFIG</c>), flattened into
/// configuration keys the same way appsettings.json is: nested mappings join with ':', sequences get indexes.
/// </summary>
internal sealed class YamlConfigurationSource(string path) : IConfigurationSource
{
    public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(path);

    private sealed class Provider(string path) : ConfigurationProvider
    {
        public override void Load()
        {
            if (!File.Exists(path))
                throw new StartupException($"config file '{path}' does not exist");
            var stream = new YamlStream();
            using var reader = new StreamReader(path);
            var scanner = new Scanner(reader);
            try
            {
                stream.Load(new Parser(scanner));
            }
            catch (YamlException e)
            {
                throw new StartupException($"config file '{path}' line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}");
            }
            catch (InvalidOperationException)
            {
                // YamlDotNet's scanner throws this, not a YamlException, on some broken input (an unclosed '[' followed by more keys).
                throw new StartupException($"config file '{path}' line {scanner.CurrentPosition.Line}, column {scanner.CurrentPosition.Column}: not valid YAML");
            }
            var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            if (stream.Documents.Count > 0)
            {
                if (stream.Documents[0].RootNode is not YamlMappingNode root)
                    throw new StartupException($"config file '{path}' must hold a mapping of settings at the top level");
                Flatten(root, prefix: null, data);
            }
            Data = data;
        }

        private static void Flatten(YamlNode node, string? prefix, Dictionary<string, string?> data)
        {
            switch (node)
            {
                case YamlMappingNode mapping:
                    foreach (var (key, value) in mapping.Children)
                        Flatten(value, Join(prefix, ((YamlScalarNode)key).Value ?? ""), data);
                    break;
                case YamlSequenceNode sequence:
                    for (var i = 0; i < sequence.Children.Count; i++)
                        Flatten(sequence.Children[i], Join(prefix, i.ToString(System.Globalization.CultureInfo.InvariantCulture)), data);
                    break;
                case YamlScalarNode scalar when prefix is not null:
                    data[prefix] = scalar.Value;
                    break;
            }
        }

        private static string Join(string? prefix, string key) => prefix is null ? key : $"{prefix}:{key}";
    }
}
