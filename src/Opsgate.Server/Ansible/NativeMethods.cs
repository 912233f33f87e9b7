using System.Runtime.InteropServices;

namespace Opsgate.Server.Ansible;

/// <summary>POSIX signals, which .NET's Process cannot send (it only has Kill = SIGKILL).</summary>
internal static partial class NativeMethods
{
    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Signals the process group <paramref name="pgid"/> (ansible-playbook runs as its leader, see <see cref="AnsibleProcess"/>), so its forks and ssh children get it too. False when no such group is left.</summary>
    public static bool SignalGroup(int pgid, int signal) => Kill(-pgid, signal) == 0 || Kill(pgid, signal) == 0;
}
