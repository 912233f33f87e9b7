using System.Text.RegularExpressions;

namespace Opsgate.Server.Hosting;

/// <summary>Name rules checked at the edge, before anything reaches storage or a cluster.</summary>
internal static partial class Validate
{
    /// <summary>DNS-1123 label (Kubernetes namespace and most object names): lower-case alphanumerics and '-', at most 63.</summary>
    public static bool IsDnsLabel(string? value) => value is { Length: > 0 and <= 63 } && DnsLabel().IsMatch(value);

    /// <summary>DNS-1123 subdomain: labels joined by '.', at most 253.</summary>
    public static bool IsDnsSubdomain(string? value) => value is { Length: > 0 and <= 253 } && DnsSubdomain().IsMatch(value);

    public const string DnsLabelRule = "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    public const string DnsSubdomainRule = "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();
}
