using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace WarpGrid.Core.Clustering;

/// <summary>Why a certificate presented by a node is refused.</summary>
public sealed class CertificateRejectedException : Exception
{
    /// <summary>Creates the exception with the reason.</summary>
    public CertificateRejectedException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// The cluster certificate authority: an ECDSA P-256 key and self-signed certificate kept in the control plane's data
/// directory (key file mode 0600). It signs node certificates from CSRs and the control plane's own TLS certificate,
/// and checks that a certificate presented by a node is one it signed and still valid.
/// </summary>
public sealed class ClusterCertificateAuthority : IDisposable
{
    /// <summary>The file holding the CA certificate (PEM).</summary>
    public const string CertificateFile = "ca.crt";

    /// <summary>The file holding the CA private key (PEM, PKCS#8, mode 0600).</summary>
    public const string KeyFile = "ca.key";

    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");

    private readonly ECDsa _key;
    private readonly TimeProvider _time;

    private ClusterCertificateAuthority(X509Certificate2 certificate, ECDsa key, TimeProvider time)
    {
        Certificate = certificate;
        _key = key;
        _time = time;
        PinnedHash = HashOf(certificate);
    }

    /// <summary>The CA certificate (public part only).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The hex SHA-256 of the CA's SubjectPublicKeyInfo: what a join token pins (like kubeadm's CA cert hash).</summary>
    public string PinnedHash { get; }

    /// <summary>The hex SHA-256 of a certificate's SubjectPublicKeyInfo.</summary>
    public static string HashOf(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>
    /// Loads the CA from <paramref name="directory"/>, or creates it there on first use. Returns whether it was created.
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// Only one of the two files exists, they do not match, or the key file can be read by others than its owner
    /// (the message names the fix, <c>chmod 600</c>; see <see cref="SecretFiles.Check"/>).
    /// </exception>
    public static (ClusterCertificateAuthority Authority, bool Created) LoadOrCreate(string directory, string clusterName, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(clusterName);
        var time = timeProvider ?? TimeProvider.System;
        Directory.CreateDirectory(directory);
        var certPath = Path.Combine(directory, CertificateFile);
        var keyPath = Path.Combine(directory, KeyFile);
        bool hasCert = File.Exists(certPath), hasKey = File.Exists(keyPath);
        if (hasCert != hasKey)
        {
            throw new InvalidDataException($"the cluster CA in '{directory}' is incomplete: {(hasCert ? KeyFile : CertificateFile)} is missing; restore it from a backup or remove both files to create a new CA (every node must then join again)");
        }

        if (hasCert)
        {
            if (SecretFiles.Check(keyPath, "the cluster CA key") is { } refusal)
            {
                throw new InvalidDataException(refusal);
            }

            var cert = X509Certificate2.CreateFromPem(File.ReadAllText(certPath));
            var key = ECDsa.Create();
            key.ImportFromPem(File.ReadAllText(keyPath));
            if (!cert.GetECDsaPublicKey()!.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
            {
                throw new InvalidDataException($"the cluster CA key in '{keyPath}' does not match the certificate in '{certPath}'");
            }

            return (new ClusterCertificateAuthority(cert, key, time), false);
        }

        var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={clusterName} cluster CA, O=WarpGrid"), caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = time.GetUtcNow();
        using var selfSigned = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(10));
        var publicOnly = X509CertificateLoader.LoadCertificate(selfSigned.RawData);
        WritePrivate(keyPath, caKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(certPath, publicOnly.ExportCertificatePem());
        return (new ClusterCertificateAuthority(publicOnly, caKey, time), true);
    }

    /// <summary>The shortest cluster secret accepted, in bytes (the CA key is derived from it).</summary>
    public const int MinSecretBytes = 32;

    /// <summary>The subject organisation of control-plane member certificates (agents' certificates never carry it).</summary>
    public const string MemberOrganization = "WarpGrid members";

    // P-256 group order n: a derived scalar must be in [1, n-1].
    private static readonly byte[] P256Order = Convert.FromHexString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");

    /// <summary>
    /// The CA of a multi-member control plane, derived from the cluster secret that every member is given: the ECDSA
    /// P-256 key is HKDF-SHA256(secret, cluster name), so every member holds the same CA without copying key files and
    /// before the replicated store is reachable (member-to-member links need it to start). The certificate has fixed
    /// validity, serial and subject, so all members present the same CA (only the ECDSA signature bytes differ; chains
    /// and the pinned public-key hash are identical). Nothing secret is written anywhere.
    /// </summary>
    /// <exception cref="ArgumentException">The secret is shorter than <see cref="MinSecretBytes"/>.</exception>
    public static ClusterCertificateAuthority FromSecret(ReadOnlySpan<byte> secret, string clusterName, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(clusterName);
        if (secret.Length < MinSecretBytes)
        {
            throw new ArgumentException($"the cluster secret must be at least {MinSecretBytes} bytes (got {secret.Length}); create one with: (umask 077; head -c 32 /dev/urandom | base64 > cluster-secret)", nameof(secret));
        }

        var salt = System.Text.Encoding.UTF8.GetBytes("warpgrid cluster CA v1");
        byte[] d = [];
        for (int counter = 0; ; counter++)
        {
            d = HKDF.DeriveKey(HashAlgorithmName.SHA256, secret.ToArray(), 32, salt, System.Text.Encoding.UTF8.GetBytes($"{clusterName}/key/{counter}"));
            if (d.AsSpan().SequenceCompareTo(P256Order) < 0 && d.AsSpan().ContainsAnyExcept((byte)0))
            {
                break;
            }
        }

        var key = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
        CryptographicOperations.ZeroMemory(d);
        var serial = HKDF.DeriveKey(HashAlgorithmName.SHA256, secret.ToArray(), 16, salt, System.Text.Encoding.UTF8.GetBytes($"{clusterName}/serial"));
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        var name = new X500DistinguishedName($"CN={clusterName} cluster CA, O=WarpGrid");
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var notBefore = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using var selfSigned = request.Create(name, X509SignatureGenerator.CreateForECDsa(key), notBefore, notBefore.AddYears(25), serial);
        return new ClusterCertificateAuthority(X509CertificateLoader.LoadCertificate(selfSigned.RawData), key, timeProvider ?? TimeProvider.System);
    }

    /// <summary>
    /// Issues a control-plane member's certificate (key included) for member-to-member mTLS: subject
    /// <c>O=WarpGrid members</c>, which no node certificate carries, SAN the member's Raft address.
    /// </summary>
    public X509Certificate2 IssueMember(string memberAddress, TimeSpan lifetime)
    {
        ArgumentException.ThrowIfNullOrEmpty(memberAddress);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN=member {memberAddress.Replace(',', '_')}, O={MemberOrganization}"), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("warpgrid-member");
        if (System.Net.IPEndPoint.TryParse(memberAddress, out var endPoint))
        {
            san.AddIpAddress(endPoint.Address);
        }

        using var cert = Sign(request, san, lifetime);
        using var withKey = cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>
    /// Why a certificate presented on a member-to-member link is refused, or null when it is a member certificate of
    /// this CA within its validity period.
    /// </summary>
    public string? MemberRefusal(X509Certificate? presented)
    {
        if (presented is null)
        {
            return "no certificate: control-plane members must present a member certificate of the cluster CA";
        }

        using var certificate = new X509Certificate2(presented);
        var now = _time.GetUtcNow().UtcDateTime;
        if (certificate.NotAfter.ToUniversalTime() <= now || certificate.NotBefore.ToUniversalTime() > now.AddMinutes(5))
        {
            return $"the member certificate '{certificate.Subject}' is not valid now ({certificate.NotBefore.ToUniversalTime():O} - {certificate.NotAfter.ToUniversalTime():O})";
        }

        if (!IsSignedByThisCa(certificate))
        {
            return $"the member certificate '{certificate.Subject}' is not signed by this cluster's CA (another cluster secret?)";
        }

        return certificate.SubjectName.EnumerateRelativeDistinguishedNames().Any(r => r.GetSingleElementType().Value == "2.5.4.10" && r.GetSingleElementValue() == MemberOrganization)
            ? null
            : $"the certificate '{certificate.Subject}' is not a control-plane member certificate (a node certificate cannot join the Raft cluster)";
    }

    /// <summary>Writes a file readable by its owner only (0600), replacing it atomically.</summary>
    public static void WritePrivate(string path, string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(text);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Signs a node certificate from a PKCS#10 CSR: the CSR's signature must verify and its key must be ECDSA P-256 or
    /// RSA ≥ 2048. The subject is set to <c>CN=<paramref name="nodeName"/></c> whatever the CSR asks; the certificate
    /// is usable for TLS client and server authentication, with the node name as DNS name.
    /// </summary>
    /// <exception cref="CertificateRejectedException">The CSR is malformed, its signature is wrong or its key is too weak.</exception>
    public X509Certificate2 SignNode(ReadOnlySpan<byte> csrDer, string nodeName, TimeSpan lifetime)
    {
        ArgumentException.ThrowIfNullOrEmpty(nodeName);
        CertificateRequest csr;
        try
        {
            csr = CertificateRequest.LoadSigningRequest(csrDer, HashAlgorithmName.SHA256, out _, CertificateRequestLoadOptions.Default, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException ex)
        {
            throw new CertificateRejectedException("the certificate signing request is malformed or its signature does not verify: " + ex.Message);
        }

        CheckKey(csr.PublicKey);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={nodeName}, O=WarpGrid nodes"), csr.PublicKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(nodeName);
        return Sign(request, san, lifetime);
    }

    /// <summary>
    /// Signs a user's client certificate from a PKCS#10 CSR: subject <c>CN=<paramref name="user"/>, O=WarpGrid users</c>
    /// plus one <c>OU</c> per group, whatever the CSR asks; the CSR's signature must verify and its key be strong.
    /// </summary>
    /// <exception cref="CertificateRejectedException">The CSR is malformed, its signature is wrong or its key is too weak.</exception>
    public X509Certificate2 SignUser(ReadOnlySpan<byte> csrDer, string user, IReadOnlyList<string> groups, TimeSpan lifetime)
    {
        ArgumentException.ThrowIfNullOrEmpty(user);
        ArgumentNullException.ThrowIfNull(groups);
        CertificateRequest csr;
        try
        {
            csr = CertificateRequest.LoadSigningRequest(csrDer, HashAlgorithmName.SHA256, out _, CertificateRequestLoadOptions.Default, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException ex)
        {
            throw new CertificateRejectedException("the certificate signing request is malformed or its signature does not verify: " + ex.Message);
        }

        CheckKey(csr.PublicKey);
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName(user);
        name.AddOrganizationName("WarpGrid users");
        foreach (var group in groups)
        {
            name.AddOrganizationalUnitName(group);
        }

        var request = new CertificateRequest(name.Build(), csr.PublicKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("warpgrid-user");
        return Sign(request, san, lifetime);
    }

    /// <summary>Issues the control plane's own TLS certificate (key included), valid for the given DNS names and IP addresses.</summary>
    public X509Certificate2 IssueServer(string name, IEnumerable<string> dnsNames, IEnumerable<System.Net.IPAddress> addresses, TimeSpan lifetime)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dnsNames);
        ArgumentNullException.ThrowIfNull(addresses);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}, O=WarpGrid control plane"), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            san.AddDnsName(dns);
        }

        foreach (var address in addresses.Distinct())
        {
            san.AddIpAddress(address);
        }

        using var cert = Sign(request, san, lifetime);
        using var withKey = cert.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private X509Certificate2 Sign(CertificateRequest request, SubjectAlternativeNameBuilder san, TimeSpan lifetime)
    {
        if (lifetime <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(lifetime), lifetime, "a certificate lifetime must be positive");
        }

        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ClientAuth, ServerAuth], false));
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        var now = _time.GetUtcNow();
        var notAfter = now + lifetime;
        if (notAfter > Certificate.NotAfter)
        {
            notAfter = Certificate.NotAfter;
        }

        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        var generator = X509SignatureGenerator.CreateForECDsa(_key);
        // Backdated a little for clock skew, but by a small part of the lifetime so renewal at a fraction of it stays meaningful.
        var skew = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, lifetime.Ticks / 10));
        return request.Create(Certificate.SubjectName, generator, now - skew, notAfter, serial);
    }

    private static void CheckKey(PublicKey key)
    {
        using var ec = key.GetECDsaPublicKey();
        if (ec is not null)
        {
            if (ec.KeySize < 256)
            {
                throw new CertificateRejectedException($"the CSR's ECDSA key has {ec.KeySize} bits; at least 256 are required");
            }

            return;
        }

        using var rsa = key.GetRSAPublicKey();
        if (rsa is null || rsa.KeySize < 2048)
        {
            throw new CertificateRejectedException("the CSR's key must be ECDSA P-256 (or RSA of at least 2048 bits)");
        }
    }

    /// <summary>
    /// Checks a certificate presented by a node: signed by this CA, within its validity period, issued for TLS client
    /// authentication. Returns the node name (the subject's CN).
    /// </summary>
    /// <exception cref="CertificateRejectedException">With a message naming the problem.</exception>
    public string ValidateNode(X509Certificate2? certificate)
    {
        if (certificate is null)
        {
            throw new CertificateRejectedException("no client certificate: this call needs the node's certificate (join first with a token)");
        }

        var now = _time.GetUtcNow();
        if (certificate.NotAfter.ToUniversalTime() <= now.UtcDateTime)
        {
            throw new CertificateRejectedException($"the client certificate of '{certificate.GetNameInfo(X509NameType.SimpleName, false)}' expired at {certificate.NotAfter.ToUniversalTime():O}; join again with a token");
        }

        if (certificate.NotBefore.ToUniversalTime() > now.UtcDateTime.AddMinutes(5))
        {
            throw new CertificateRejectedException($"the client certificate is not valid before {certificate.NotBefore.ToUniversalTime():O}");
        }

        if (!IsSignedByThisCa(certificate))
        {
            throw new CertificateRejectedException("the client certificate is not signed by this cluster's CA");
        }

        var name = certificate.GetNameInfo(X509NameType.SimpleName, false);
        if (string.IsNullOrEmpty(name))
        {
            throw new CertificateRejectedException("the client certificate has no common name");
        }

        return name;
    }

    /// <summary>Whether <paramref name="certificate"/> was signed by this CA's key (the signature is checked, not just the issuer name).</summary>
    public bool IsSignedByThisCa(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        if (!chain.Build(certificate))
        {
            return false;
        }

        var root = chain.ChainElements[^1].Certificate;
        return root.RawData.AsSpan().SequenceEqual(Certificate.RawData);
    }

    /// <summary>The DER of the CA certificate.</summary>
    public byte[] CertificateDer => Certificate.RawData;

    /// <summary>Releases the key.</summary>
    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}
