using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace WarpGrid.Testing;

/// <summary>A throwaway ECDSA P-256 CA for tests: issues server certificates and writes them as PEM files.</summary>
internal sealed class TestCertificateAuthority : IDisposable
{
    private readonly ECDsa _key;

    private TestCertificateAuthority(X509Certificate2 certificate, ECDsa key)
    {
        Certificate = certificate;
        _key = key;
    }

    /// <summary>The CA certificate (public part).</summary>
    public X509Certificate2 Certificate { get; }

    public static TestCertificateAuthority Create(string name = "WarpGrid test CA")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var selfSigned = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
        return new TestCertificateAuthority(X509CertificateLoader.LoadCertificate(selfSigned.RawData), key);
    }

    /// <summary>An intermediate CA signed by this one.</summary>
    public TestCertificateAuthority IssueIntermediate(string name = "WarpGrid test intermediate CA")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        var now = DateTimeOffset.UtcNow;
        using var signed = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), now.AddMinutes(-5), now.AddMonths(6), [0x01, 0x02, 0x03]);
        return new TestCertificateAuthority(X509CertificateLoader.LoadCertificate(signed.RawData), key);
    }

    /// <summary>A server certificate for localhost, 127.0.0.1 and ::1 (public part) and its PEM key.</summary>
    public (X509Certificate2 Certificate, string KeyPem) IssueServer(string commonName, TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        var now = DateTimeOffset.UtcNow;
        var certificate = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), now.AddMinutes(-5), now + (lifetime ?? TimeSpan.FromDays(1)), serial);
        return (certificate, key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>
    /// Issues a server certificate and writes it (followed by the CA certificate when <paramref name="withChain"/>)
    /// and its key (mode 0600) to the two files. Returns the certificate.
    /// </summary>
    public X509Certificate2 WriteServerPair(string certificateFile, string keyFile, string commonName, bool withChain = false)
    {
        var (certificate, keyPem) = IssueServer(commonName);
        var pem = certificate.ExportCertificatePem() + "\n" + (withChain ? Certificate.ExportCertificatePem() + "\n" : string.Empty);
        WriteKey(keyFile, keyPem);
        File.WriteAllText(certificateFile, pem);
        return certificate;
    }

    /// <summary>Writes a PEM key readable by its owner only.</summary>
    public static void WriteKey(string path, string keyPem)
    {
        File.WriteAllText(path, keyPem);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>Whether <paramref name="presented"/> chains to <paramref name="root"/> alone (no system trust).</summary>
    public static bool ChainsTo(X509Certificate2 root, X509Certificate? presented)
    {
        if (presented is null)
        {
            return false;
        }

        using var certificate = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    /// <summary>
    /// TLS client options that trust only <paramref name="root"/> (and check the host name), reporting the server
    /// certificate each handshake saw to <paramref name="seen"/>.
    /// </summary>
    public static SslClientAuthenticationOptions TrustOnly(X509Certificate2 root, Action<X509Certificate2>? seen = null) => new()
    {
        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            if (certificate is not null)
            {
                seen?.Invoke(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            }

            // Name mismatches and unavailable certificates fail; an untrusted root is decided by our own chain.
            return (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) == 0
                && ChainsTo(root, certificate);
        },
    };

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}
