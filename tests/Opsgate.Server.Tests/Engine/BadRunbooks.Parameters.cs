namespace Opsgate.Server.Tests.Engine;

/// <summary>Runbooks the loader must refuse. Each would load but for the one line named.</summary>
internal static partial class BadRunbooks
{
    public static TheoryData<BadRunbook> Parameters => new()
    {
        new("unknown parameter key", """
            name: demo
            parameters:
              - name: ns
                type: string
                requird: true
            steps:
              - name: a
                kind: noop
            """, 5, "unknown key 'requird' in a parameter"),
        new("duplicate parameter", """
            name: demo
            parameters:
              - name: ns
                type: string
              - name: ns
                type: int
            steps:
              - name: a
                kind: noop
            """, 5, "parameter 'ns' is declared twice"),
        new("int default that is text", """
            name: demo
            parameters:
              - name: n
                type: int
                default: three
            steps:
              - name: a
                kind: noop
            """, 5, "default of parameter 'n' must be an integer"),
        new("int default out of range", """
            name: demo
            parameters:
              - name: n
                type: int
                min: 1
                max: 5
                default: 7
            steps:
              - name: a
                kind: noop
            """, 7, "default of parameter 'n' must be an integer between 1 and 5"),
        new("string default that is a number", """
            name: demo
            parameters:
              - name: s
                type: string
                default: 5
            steps:
              - name: a
                kind: noop
            """, 5, "default of parameter 's' must be a string (quote it)"),
        new("bool default that is text", """
            name: demo
            parameters:
              - name: b
                type: bool
                default: "yes"
            steps:
              - name: a
                kind: noop
            """, 5, "default of parameter 'b' must be true or false"),
        new("enum default not among the values", """
            name: demo
            parameters:
              - name: e
                type: enum
                values: [a, b]
                default: c
            steps:
              - name: a
                kind: noop
            """, 6, "default of parameter 'e' must be one of a, b"),
        new("default breaking the pattern", """
            name: demo
            parameters:
              - name: ns
                type: string
                pattern: dns-label
                default: Prod
            steps:
              - name: a
                kind: noop
            """, 6, "default of parameter 'ns' must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"),
        new("required with a default", """
            name: demo
            parameters:
              - name: ns
                type: string
                required: true
                default: prod
            steps:
              - name: a
                kind: noop
            """, 6, "parameter 'ns' is required, so it cannot have a default"),
        new("unknown parameter type", """
            name: demo
            parameters:
              - name: ns
                type: text
            steps:
              - name: a
                kind: noop
            """, 4, "type of parameter 'ns' must be string, int, bool, enum, object or any, not 'text'"),
        new("parameter name with capitals", """
            name: demo
            parameters:
              - name: Namespace
                type: string
            steps:
              - name: a
                kind: noop
            """, 3, "parameter name 'Namespace' must be lower-case letters, digits and '_'"),
        new("pattern on an int", """
            name: demo
            parameters:
              - name: n
                type: int
                pattern: dns-label
            steps:
              - name: a
                kind: noop
            """, 5, "pattern applies to string parameters only, and parameter 'n' is int"),
        new("invalid regex", """
            name: demo
            parameters:
              - name: s
                type: string
                pattern: "[a-z"
            steps:
              - name: a
                kind: noop
            """, 5, "pattern is not dns-label, dns-subdomain or a valid regular expression: Invalid pattern '[a-z' at offset 4"),
        new("min above max", """
            name: demo
            parameters:
              - name: n
                type: int
                min: 5
                max: 1
            steps:
              - name: a
                kind: noop
            """, 6, "max (1) of parameter 'n' is below its min (5)"),
        new("enum without values", """
            name: demo
            parameters:
              - name: e
                type: enum
            steps:
              - name: a
                kind: noop
            """, 3, "enum parameter 'e' needs values"),
        new("values on a string", """
            name: demo
            parameters:
              - name: s
                type: string
                values: [a]
            steps:
              - name: a
                kind: noop
            """, 5, "values applies to enum parameters only"),
    };
}
