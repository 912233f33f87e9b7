using System.Globalization;
using System.Text.RegularExpressions;

namespace Opsgate.Server.Ansible.Inventories;

/// <summary>
/// ansible's host ranges (<c>web[01:20]</c>, <c>db-[a:f]</c>, <c>node[0:10:2]</c>) checked the way ansible 2.14's
/// <c>expand_hostname_range</c> expands them. ansible's own message for a bad one names neither the host nor the
/// line; this says which and why. Used only once ansible has refused an inventory, so it never refuses one that
/// ansible accepts.
/// </summary>
internal static partial class HostRanges
{
    /// <summary>What is wrong with the range in <paramref name="host"/>, or null when it has none or a good one.</summary>
    public static string? Problem(string host)
    {
        if (!host.Contains('[', StringComparison.Ordinal) || BracketedAddress().IsMatch(host))
            return null;
        var rest = host;
        while (rest.IndexOf('[', StringComparison.Ordinal) is var open and >= 0)
        {
            var close = rest.IndexOf(']', open + 1);
            if (close < 0)
                return "has a range without its closing ']'";
            var bounds = rest[(open + 1)..close].Split(':');
            if (bounds.Length is not (2 or 3))
                return "has a malformed range: write [begin:end] or [begin:end:step]";
            var (begin, end) = (bounds[0].Length == 0 ? "0" : bounds[0], bounds[1]);
            if (end.Length == 0)
                return "has a range without an end";
            if (bounds.Length == 3 && !(int.TryParse(bounds[2], NumberStyles.None, CultureInfo.InvariantCulture, out var step) && step > 0))
                return "has a range whose step is not a whole number above 0";
            var letters = Letter().IsMatch(begin) && Letter().IsMatch(end);
            if (letters && string.CompareOrdinal(LetterOrder(begin), LetterOrder(end)) > 0)
                return "has a range whose begin comes after its end";
            if (!letters && !(Number().IsMatch(begin) && Number().IsMatch(end)))
                return "has a range whose begin and end are not both numbers or both single letters";
            if (!letters && begin.Length > 1 && begin[0] == '0' && begin.Length != end.Length)
                return "has a zero-padded range whose begin and end differ in length";
            rest = rest[(close + 1)..];
        }
        return null;
    }

    /// <summary>ansible orders letters a..z then A..Z (string.ascii_letters).</summary>
    private static string LetterOrder(string letter) => char.IsLower(letter[0]) ? "0" + letter : "1" + letter;

    /// <summary>An IPv6 address in brackets, with or without a port: not a range.</summary>
    [GeneratedRegex(@"^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex BracketedAddress();

    [GeneratedRegex("^[A-Za-z]$", RegexOptions.CultureInvariant)]
    private static partial Regex Letter();

    [GeneratedRegex("^[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex Number();
}
