namespace Opsgate.Server.Persistence.Postgres;

internal sealed class PostgresSqlText : ISqlText
{
    /// <summary>The row lock makes concurrent writers of one row take turns (until commit or rollback).</summary>
    public string ForUpdate => " FOR UPDATE";

    /// <summary>Npgsql passes the array as one PostgreSQL array parameter.</summary>
    public string InList(string column, string parameter) => $"{column} = ANY(@{parameter})";

    public string NotInList(string column, string parameter) => $"{column} <> ALL(@{parameter})";

    // Columns holding JSON are text (one schema for both databases), read as jsonb.
    public string JsonIsString(string column, string key) => $"jsonb_typeof({column}::jsonb -> '{SqlKeys.Checked(key)}') = 'string'";

    public string JsonText(string column, string key) => $"{column}::jsonb ->> '{SqlKeys.Checked(key)}'";
}
