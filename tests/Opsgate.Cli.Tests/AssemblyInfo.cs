// The tests check Unix file modes (the config is 0600) and run the opsctl apphost; they run on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
