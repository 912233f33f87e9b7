using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Opsgate.Server.Secrets;

namespace Opsgate.Server.Ui;

/// <summary>
/// Where the keys protecting session cookies and form tokens are kept: in the secret store (AES-256-GCM in the
/// database, under <c>ui-keys/</c>), so every replica on one database reads the same key ring and a session made on
/// one is accepted by the others (given the same <c>Secrets:Key</c>, which replicas need for credentials anyway).
/// Data Protection asks for keys synchronously and seldom (at the first use, then about once a day), hence the waits.
/// </summary>
internal sealed class UiKeyRepository(ISecretStore secrets) : IXmlRepository
{
    private const string Prefix = "ui-keys/";

    public IReadOnlyCollection<XElement> GetAllElements() => GetAllAsync().GetAwaiter().GetResult();

    public void StoreElement(XElement element, string friendlyName) =>
        secrets.PutAsync(Prefix + friendlyName, Encoding.UTF8.GetBytes(element.ToString(SaveOptions.DisableFormatting)), CancellationToken.None).GetAwaiter().GetResult();

    private async Task<IReadOnlyCollection<XElement>> GetAllAsync()
    {
        var elements = new List<XElement>();
        foreach (var name in await secrets.NamesAsync(Prefix, CancellationToken.None))
        {
            if (await secrets.GetAsync(name, CancellationToken.None) is { } xml)
                elements.Add(XElement.Parse(Encoding.UTF8.GetString(xml)));
        }
        return elements;
    }
}
