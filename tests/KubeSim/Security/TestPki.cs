using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KubeSim.Security;

/// <summary>
/// A throw-away PKI made in memory at start: a CA, a server certificate for 127.0.0.1/::1/localhost,
/// and client certificates on demand (CN = user, O = system:masters), all ECDSA P-256.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly ECDsa _caKey;

    public TestPki()
    {
        var now = DateTimeOffset.UtcNow;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=kubesim-ca", _caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        Ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
        CaPem = Ca.ExportCertificatePem();

        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var issued = Issue("CN=kubesim", serverKey, "1.3.6.1.5.5.7.3.1", san.Build());
        using var withKey = issued.CopyWithPrivateKey(serverKey);
        // Round-trip through PKCS#12 so the private key is usable by SslStream on every platform.
        Server = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public X509Certificate2 Ca { get; }
    public string CaPem { get; }
    public X509Certificate2 Server { get; }

    /// <summary>A client certificate and its PKCS#8 key, both PEM, for a kubeconfig's client-certificate-data/client-key-data.</summary>
    public (string CertificatePem, string KeyPem) IssueClient(string user)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var cert = Issue($"CN={user}, O=system:masters", key, "1.3.6.1.5.5.7.3.2", null);
        return (cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>Whether <paramref name="cert"/> was issued by this CA (client authentication).</summary>
    public bool Issued(X509Certificate2 cert)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert);
    }

    private X509Certificate2 Issue(string subject, ECDsa key, string usageOid, X509Extension? san)
    {
        var now = DateTimeOffset.UtcNow;
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, true, false));
        if (san is not null) request.CertificateExtensions.Add(san);
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        return request.Create(Ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_caKey), now.AddDays(-1), now.AddYears(1), serial);
    }

    public void Dispose()
    {
        Server.Dispose();
        Ca.Dispose();
        _caKey.Dispose();
    }
}
