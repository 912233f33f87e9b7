return await Opsgate.Cli.Opsctl.RunAsync(args, Opsgate.Cli.CliIo.FromConsole());
