namespace Opsgate.Server.Persistence.Sqlite;

internal sealed class SqliteSqlText : ISqlText
{
    /// <summary>Nothing: SQLite writers take turns (<see cref="Database.WriteAsync()"/>), so the write turn holds every row already.</summary>
    public string ForUpdate => "";

    /// <summary>Dapper expands the array into a list of parameters.</summary>
    public string InList(string column, string parameter) => $"{column} IN @{parameter}";

    public string NotInList(string column, string parameter) => $"{column} NOT IN @{parameter}";

    public string JsonIsString(string column, string key) => $"json_type({column}, '$.{SqlKeys.Checked(key)}') = 'text'";

    public string JsonText(string column, string key) => $"json_extract({column}, '$.{SqlKeys.Checked(key)}')";
}
