using Opsgate.Server.Hosting;

return await OpsgateHost.RunAsync(args);
