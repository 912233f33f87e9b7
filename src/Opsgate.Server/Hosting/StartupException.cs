namespace Opsgate.Server.Hosting;

/// <summary>A problem that stops start-up; its message is printed as one line, without a stack trace.</summary>
internal sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
