// The suite drives Linux processes (PostgreSQL, sshd, ansible, kubectl); it runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
