namespace Opsgate.Server.Persistence;

/// <summary>JSON keys written into SQL text by <see cref="ISqlText"/>: constants of the caller's, checked so that no value ever gets there.</summary>
internal static class SqlKeys
{
    public static string Checked(string key) =>
        key.Length > 0 && key.All(c => c is (>= 'a' and <= 'z') or '_')
            ? key
            : throw new ArgumentException($"'{key}' is not a JSON key that may be written into SQL", nameof(key));
}
