using System.Security.Cryptography;

namespace WarpGrid.Core.Oci.Signing;

/// <summary>
/// ECDSA P-256 keys in the PEM forms cosign's key-based signing uses: the public key as SubjectPublicKeyInfo
/// (<c>PUBLIC KEY</c>, what <c>cosign.pub</c> holds), the private key as PKCS#8 (<c>PRIVATE KEY</c>, or
/// <c>ENCRYPTED PRIVATE KEY</c> with a password) or SEC 1 (<c>EC PRIVATE KEY</c>).
/// </summary>
/// <remarks>cosign's own encrypted format (<c>ENCRYPTED SIGSTORE PRIVATE KEY</c>, scrypt and secretbox) is not read.</remarks>
public static class CosignKeys
{
    private const string P256Oid = "1.2.840.10045.3.1.7";
    private const int Pbkdf2Iterations = 100_000;

    /// <summary>Creates a P-256 key pair.</summary>
    /// <param name="password">When given, the private key is written as an encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC).</param>
    /// <returns>The private key (PKCS#8 PEM) and the public key (SubjectPublicKeyInfo PEM).</returns>
    public static (string PrivateKeyPem, string PublicKeyPem) Generate(string? password = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string privatePem = string.IsNullOrEmpty(password)
            ? key.ExportPkcs8PrivateKeyPem()
            : key.ExportEncryptedPkcs8PrivateKeyPem(password, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, Pbkdf2Iterations));
        return (privatePem + "\n", key.ExportSubjectPublicKeyInfoPem() + "\n");
    }

    /// <summary>Reads a public key from a <c>PUBLIC KEY</c> PEM (SubjectPublicKeyInfo).</summary>
    /// <exception cref="FormatException">The text holds no such PEM, or the key is not ECDSA P-256.</exception>
    public static ECDsa LoadPublic(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        string label = Label(pem);
        if (label != "PUBLIC KEY")
        {
            throw new FormatException($"Expected a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo, as in cosign.pub), found '{label}'.");
        }

        return Import(key => key.ImportFromPem(pem), "public key");
    }

    /// <summary>Reads a private key from a PKCS#8 <c>PRIVATE KEY</c>, an <c>ENCRYPTED PRIVATE KEY</c> (with <paramref name="password"/>) or an <c>EC PRIVATE KEY</c> PEM.</summary>
    /// <exception cref="FormatException">The text holds no supported PEM, the key is not ECDSA P-256, the password is missing, or it is wrong.</exception>
    public static ECDsa LoadPrivate(string pem, string? password)
    {
        ArgumentNullException.ThrowIfNull(pem);
        string label = Label(pem);
        switch (label)
        {
            case "PRIVATE KEY":
            case "EC PRIVATE KEY":
                return Import(key => key.ImportFromPem(pem), "private key");
            case "ENCRYPTED PRIVATE KEY":
                if (string.IsNullOrEmpty(password))
                {
                    throw new FormatException("The private key is encrypted (PEM 'ENCRYPTED PRIVATE KEY') and no password was given.");
                }

                return Import(key => key.ImportFromEncryptedPem(pem, password), "encrypted private key (wrong password?)");
            case "ENCRYPTED SIGSTORE PRIVATE KEY":
            case "ENCRYPTED COSIGN PRIVATE KEY":
                throw new FormatException($"PEM '{label}' is cosign's own encrypted key format, which is not supported; use an ECDSA P-256 key in PKCS#8 PEM (for example from 'warp keys generate' or 'openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256').");
            default:
                throw new FormatException($"Expected a PEM 'PRIVATE KEY', 'ENCRYPTED PRIVATE KEY' or 'EC PRIVATE KEY', found '{label}'.");
        }
    }

    /// <summary>The key's identifier: <c>sha256:</c> and the hex SHA-256 of its DER SubjectPublicKeyInfo.</summary>
    public static string KeyId(ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return OciDigest.Compute(key.ExportSubjectPublicKeyInfo());
    }

    /// <summary>Throws unless <paramref name="key"/> is on P-256.</summary>
    /// <exception cref="ArgumentException">The key is on another curve.</exception>
    internal static void EnsureP256(ECDsa key, string paramName)
    {
        ArgumentNullException.ThrowIfNull(key, paramName);
        if (!IsP256(key))
        {
            throw new ArgumentException($"The key is not an ECDSA P-256 key ({key.KeySize} bits); cosign signatures use P-256.", paramName);
        }
    }

    private static bool IsP256(ECDsa key)
    {
        ECParameters parameters = key.ExportParameters(includePrivateParameters: false);
        return parameters.Curve.IsNamed && (parameters.Curve.Oid.Value == P256Oid ||
            parameters.Curve.Oid.FriendlyName is "nistP256" or "ECDSA_P256" or "secp256r1" or "prime256v1");
    }

    private static ECDsa Import(Action<ECDsa> import, string what)
    {
        var key = ECDsa.Create();
        try
        {
            import(key);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new FormatException($"The {what} could not be read: {ex.Message}", ex);
        }

        if (!IsP256(key))
        {
            int bits = key.KeySize;
            key.Dispose();
            throw new FormatException($"The {what} is not an ECDSA P-256 key ({bits} bits); cosign signatures use P-256.");
        }

        return key;
    }

    private static string Label(string pem)
    {
        if (!PemEncoding.TryFind(pem, out PemFields fields))
        {
            throw new FormatException("The text holds no PEM block (-----BEGIN …-----).");
        }

        return pem[fields.Label];
    }
}
