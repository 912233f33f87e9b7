namespace Opsgate.Cli.Tests.Infrastructure;

/// <summary>One server for every opsctl test: starting one costs more than all the commands together.</summary>
[CollectionDefinition(Name)]
public sealed class SharedServer : ICollectionFixture<CliServer>
{
    public const string Name = "opsgate server";
}
