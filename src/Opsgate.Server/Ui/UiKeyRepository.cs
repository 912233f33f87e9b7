using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging.Abstractions;

namespace Opsgate.Server.Ui;

/// <summary>
/// Where the keys protecting session cookies and form tokens are kept: files in a directory of the data dir that only
/// the server's user may open (like the local secret store's key). Made on the first key, not at start, so a data
/// dir that cannot be used is reported by the checks that name it rather than by this.
/// </summary>
internal sealed class UiKeyRepository(string directory) : IXmlRepository
{
    private readonly FileSystemXmlRepository _files = new(new DirectoryInfo(directory), NullLoggerFactory.Instance);

    public IReadOnlyCollection<XElement> GetAllElements() => Directory.Exists(directory) ? _files.GetAllElements() : [];

    public void StoreElement(XElement element, string friendlyName)
    {
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(directory);
        else
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _files.StoreElement(element, friendlyName);
    }
}
