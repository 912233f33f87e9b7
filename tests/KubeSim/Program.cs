using System.Globalization;
using System.Runtime.InteropServices;
using KubeSim;

// dotnet run --project tests/KubeSim -- --port P --kubeconfig-out FILE [--load manifests.yaml] [--ready-after 200ms] [--tls] [--client-certs]
var options = new KubeSimOptions();
string? kubeconfigOut = null;
var tokenGiven = false;
for (var i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--port": options = options with { Port = int.Parse(Value(), CultureInfo.InvariantCulture) }; break;
        case "--kubeconfig-out": kubeconfigOut = Value(); break;
        case "--load": options = options with { ManifestsYaml = File.ReadAllText(Value()) }; break;
        case "--ready-after": options = options with { ReadyAfter = Durations.Parse(Value()) }; break;
        case "--deletion-grace": options = options with { DeletionGrace = Durations.Parse(Value()) }; break;
        case "--token":
            options = options with { Token = Value() };
            tokenGiven = true;
            break;
        case "--tls": options = options with { Tls = true }; break;
        case "--client-certs": options = options with { Tls = true, ClientCertificates = true }; break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            Console.Error.WriteLine("usage: KubeSim --port P --kubeconfig-out FILE [--load manifests.yaml] [--ready-after 200ms] [--deletion-grace 100ms] [--token T] [--tls] [--client-certs]");
            return 2;
    }
}

// kubectl sends credentials only over TLS: a plain-HTTP KubeSim from the command line is open unless --token is given.
if (!options.Tls && !tokenGiven) options = options with { Token = null };

await using var server = await KubeSimServer.StartAsync(options);
if (kubeconfigOut is not null) await File.WriteAllTextAsync(kubeconfigOut, server.KubeconfigYaml());
Console.WriteLine($"KubeSim listening on {server.BaseAddress}");
if (kubeconfigOut is not null) Console.WriteLine($"kubeconfig written to {kubeconfigOut}");

var done = new TaskCompletionSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    done.TrySetResult();
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
await done.Task;
await server.StopAsync();
return 0;
