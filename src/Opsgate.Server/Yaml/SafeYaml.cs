using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Opsgate.Server.Yaml;

/// <summary>Why YAML a user gave could not be loaded, and where (line and column, 1-based).</summary>
internal sealed class SafeYamlException(int line, int column, string reason) : Exception(reason)
{
    public int Line { get; } = line;
    public int Column { get; } = column;

    /// <summary>The reason alone: YamlDotNet's description of the syntax, which never quotes the text (it may hold passwords).</summary>
    public string Reason { get; } = reason;
}

/// <summary>
/// Loads YAML that users give (runbooks, inventories, playbooks read at submit) with the guards it needs. YamlDotNet's
/// loader is recursive and expands aliases: deep nesting would overflow the stack, which no catch survives, and a few
/// lines of aliases expand to gigabytes; both are refused before nodes are built. Its scanner also throws
/// <see cref="InvalidOperationException"/> on some broken input (an unclosed '[' followed by more keys); every failure
/// comes out as a <see cref="SafeYamlException"/> with a position.
/// </summary>
internal static class SafeYaml
{
    public static YamlStream Load(string text, int maxDepth)
    {
        var stream = new YamlStream();
        var scanner = new Scanner(new StringReader(text));
        try
        {
            stream.Load(new GuardedParser(new Parser(scanner), maxDepth));
        }
        catch (YamlException e)
        {
            throw new SafeYamlException((int)e.Start.Line, (int)e.Start.Column, Describe(e));
        }
        catch (InvalidOperationException)
        {
            throw new SafeYamlException((int)scanner.CurrentPosition.Line, (int)scanner.CurrentPosition.Column, "not valid YAML");
        }
        return stream;
    }

    private static string Describe(YamlException e)
    {
        var message = e.InnerException?.Message ?? e.Message;
        // YamlDotNet prefixes "(Line: 2, Col: 3, Idx: 9) - (Line: ...): "; the position is given separately.
        var at = message.LastIndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && at >= 0 ? message[(at + 3)..] : message;
    }

    private sealed class GuardedParser(IParser inner, int maxDepth) : IParser
    {
        private int _depth;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            if (!inner.MoveNext())
                return false;
            switch (inner.Current)
            {
                case AnchorAlias alias:
                    throw new SafeYamlException((int)alias.Start.Line, (int)alias.Start.Column, $"YAML aliases (*{alias.Value}) are not supported: write the value out");
                case SequenceStart or MappingStart when ++_depth > maxDepth:
                    throw new SafeYamlException((int)inner.Current.Start.Line, (int)inner.Current.Start.Column, $"nested deeper than {maxDepth} levels");
                case SequenceEnd or MappingEnd:
                    _depth--;
                    break;
            }
            return true;
        }
    }
}
