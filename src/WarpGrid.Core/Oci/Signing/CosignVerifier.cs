using System.Security.Cryptography;
using System.Text.Json;

namespace WarpGrid.Core.Oci.Signing;

/// <summary>The outcome of <see cref="CosignVerifier.VerifyAsync"/>.</summary>
/// <param name="Verified">True when a signature over the artifact's digest verifies with one of the keys.</param>
/// <param name="Reason">Which signature and key verified, or why the artifact was refused (one clause per signature examined).</param>
/// <param name="KeyId">The verifying key's <see cref="CosignKeys.KeyId"/>; null when refused.</param>
public sealed record SignatureVerification(bool Verified, string Reason, string? KeyId);

/// <summary>
/// Verifies cosign key-based signatures of an artifact: the legacy simple-signing signatures under the tag
/// <c>sha256-&lt;hex&gt;.sig</c>, and Sigstore bundles (cosign v3: a DSSE envelope over an in-toto statement with
/// predicate <see cref="CosignFormat.SignPredicateType"/>) found through the referrers API or its fallback tag
/// <c>sha256-&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// <para>A signature counts when its ECDSA P-256 / SHA-256 signature verifies with one of the keys over the exact stored
/// bytes (the payload, or the DSSE PAE), and only then is the content read: a simple-signing payload must have
/// <c>critical.type</c> <see cref="CosignFormat.SignatureType"/> and <c>critical.image.docker-manifest-digest</c> equal
/// to the artifact's digest; a statement must name the artifact's digest among its subjects. One such signature is
/// enough.</para>
/// <para>Transparency-log entries, certificates and timestamps are not checked: this is what
/// <c>cosign verify --key cosign.pub --insecure-ignore-tlog</c> checks.</para>
/// </remarks>
public static class CosignVerifier
{
    /// <summary>The largest simple-signing payload read.</summary>
    public const int MaxPayloadBytes = 1024 * 1024;

    /// <summary>The largest Sigstore bundle read.</summary>
    public const int MaxBundleBytes = 4 * 1024 * 1024;

    private const string BundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle";

    /// <summary>Looks for the artifact's signatures and checks them against <paramref name="publicKeys"/>.</summary>
    /// <param name="client">The registry client.</param>
    /// <param name="repository">The artifact's repository (a tag or digest on it is ignored).</param>
    /// <param name="manifestDigest">The digest of the artifact's manifest: what the signature must be over.</param>
    /// <param name="publicKeys">ECDSA P-256 public keys, any of which may have signed (<see cref="CosignKeys.LoadPublic"/>).</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <returns>Verified, with the key; or refused, with the reason: no signature, a signature by none of the keys (or over altered bytes), a payload for another digest, or malformed content.</returns>
    /// <exception cref="ArgumentException">The digest is malformed, no key was given, or a key is not P-256.</exception>
    /// <exception cref="OciException">The registry could not be reached, or refused the requests (not found is a refusal, not an exception).</exception>
    public static async Task<SignatureVerification> VerifyAsync(OciRegistryClient client, OciReference repository, string manifestDigest, IReadOnlyList<ECDsa> publicKeys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(publicKeys);
        OciDigest.Validate(manifestDigest, nameof(manifestDigest));
        if (publicKeys.Count == 0)
        {
            throw new ArgumentException("At least one public key is needed.", nameof(publicKeys));
        }

        var keys = new List<(ECDsa Key, string Id)>(publicKeys.Count);
        foreach (ECDsa key in publicKeys)
        {
            CosignKeys.EnsureP256(key, nameof(publicKeys));
            keys.Add((key, CosignKeys.KeyId(key)));
        }

        OciRepository repo = repository.RepositoryReference;
        var refusals = new List<string>();

        SignatureVerification? legacy = await VerifyLegacyAsync(client, repo, manifestDigest, keys, refusals, cancellationToken).ConfigureAwait(false);
        if (legacy is not null)
        {
            return legacy;
        }

        SignatureVerification? bundle = await VerifyBundlesAsync(client, repo, manifestDigest, keys, refusals, cancellationToken).ConfigureAwait(false);
        if (bundle is not null)
        {
            return bundle;
        }

        if (refusals.Count == 0)
        {
            return new SignatureVerification(false,
                $"no signature: {repo} has no cosign signature for {manifestDigest} (no tag {CosignFormat.SignatureTag(manifestDigest)}, and no {CosignFormat.BundleMediaType} referrer through the referrers API or the tag {OciRegistryClient.ReferrersFallbackTag(manifestDigest)})",
                null);
        }

        string keysText = keys.Count == 1 ? "the key " + keys[0].Id : $"{keys.Count} keys";
        return new SignatureVerification(false, $"refused: no signature of {repo}@{manifestDigest} verifies with {keysText}: " + string.Join("; ", refusals), null);
    }

    private static async Task<SignatureVerification?> VerifyLegacyAsync(OciRegistryClient client, OciRepository repo, string manifestDigest, List<(ECDsa Key, string Id)> keys, List<string> refusals, CancellationToken cancellationToken)
    {
        OciReference signatureReference = repo.WithTag(CosignFormat.SignatureTag(manifestDigest));
        OciManifestResult fetched;
        try
        {
            fetched = await client.GetManifestAsync(signatureReference, cancellationToken).ConfigureAwait(false);
        }
        catch (OciNotFoundException)
        {
            return null;
        }

        OciImageManifest manifest;
        try
        {
            manifest = OciImageManifest.Parse(fetched.Content, signatureReference.ToString());
        }
        catch (OciInvalidArtifactException ex)
        {
            refusals.Add($"malformed signature manifest: {ex.Message}");
            return null;
        }

        int checkedLayers = 0;
        for (int i = 0; i < manifest.Layers.Count; i++)
        {
            OciDescriptor layer = manifest.Layers[i];
            if (layer.MediaType != CosignFormat.SimpleSigningMediaType)
            {
                continue;
            }

            checkedLayers++;
            string where = $"signature {i} under {signatureReference.Tag}";
            (bool ok, string reason, string? keyId) = await CheckSimpleSigningAsync(client, repo, layer, manifestDigest, keys, cancellationToken).ConfigureAwait(false);
            if (ok)
            {
                return new SignatureVerification(true, $"verified: {where} (cosign simple signing) is signed by key {keyId}", keyId);
            }

            refusals.Add($"{where}: {reason}");
        }

        if (checkedLayers == 0)
        {
            refusals.Add($"malformed signature manifest: {signatureReference.Tag} has no {CosignFormat.SimpleSigningMediaType} layer");
        }

        return null;
    }

    private static async Task<(bool Ok, string Reason, string? KeyId)> CheckSimpleSigningAsync(OciRegistryClient client, OciRepository repo, OciDescriptor layer, string manifestDigest, List<(ECDsa Key, string Id)> keys, CancellationToken cancellationToken)
    {
        if (!layer.Annotations.TryGetValue(CosignFormat.SignatureAnnotation, out string? annotation))
        {
            return (false, $"malformed: the layer has no '{CosignFormat.SignatureAnnotation}' annotation", null);
        }

        if (!CosignFormat.TryDecodeBase64(annotation, out byte[] signature))
        {
            return (false, $"malformed: the '{CosignFormat.SignatureAnnotation}' annotation is not base64", null);
        }

        if (layer.Size > MaxPayloadBytes)
        {
            return (false, $"malformed: the payload is {layer.Size} bytes, more than {MaxPayloadBytes}", null);
        }

        byte[] payload;
        try
        {
            payload = await client.PullBlobBytesAsync(repo, layer.Digest, MaxPayloadBytes, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OciNotFoundException or OciDigestMismatchException or OciSizeLimitException)
        {
            return (false, $"the payload blob {layer.Digest} cannot be used: {ex.Message}", null);
        }

        string? keyId = FindSigner(payload, signature, keys);
        if (keyId is null)
        {
            return (false, "signed by none of the keys (another key signed it, or the payload bytes were changed after signing)", null);
        }

        if (!CosignFormat.TryReadPayload(payload, out string? type, out string? digest, out string? error))
        {
            return (false, $"malformed payload: {error}", null);
        }

        if (!string.Equals(type, CosignFormat.SignatureType, StringComparison.Ordinal))
        {
            return (false, $"malformed payload: critical.type is '{type}', not '{CosignFormat.SignatureType}'", null);
        }

        if (!string.Equals(digest, manifestDigest, StringComparison.Ordinal))
        {
            return (false, $"digest mismatch: the signed payload is for {digest}, not for {manifestDigest}", null);
        }

        return (true, "", keyId);
    }

    private static async Task<SignatureVerification?> VerifyBundlesAsync(OciRegistryClient client, OciRepository repo, string manifestDigest, List<(ECDsa Key, string Id)> keys, List<string> refusals, CancellationToken cancellationToken)
    {
        IReadOnlyList<OciDescriptor> referrers;
        try
        {
            referrers = await client.GetReferrersAsync(repo, manifestDigest, cancellationToken).ConfigureAwait(false);
        }
        catch (OciInvalidArtifactException ex)
        {
            refusals.Add($"malformed referrers: {ex.Message}");
            return null;
        }

        foreach (OciDescriptor referrer in referrers)
        {
            if (referrer.ArtifactType != CosignFormat.BundleMediaType || !OciDigest.IsValid(referrer.Digest))
            {
                continue;
            }

            string where = $"bundle {referrer.Digest}";
            (bool ok, string reason, string? keyId) = await CheckBundleManifestAsync(client, repo, referrer, manifestDigest, keys, cancellationToken).ConfigureAwait(false);
            if (ok)
            {
                return new SignatureVerification(true, $"verified: {where} (Sigstore bundle, DSSE in-toto {CosignFormat.SignPredicateType}) is signed by key {keyId}", keyId);
            }

            refusals.Add($"{where}: {reason}");
        }

        return null;
    }

    private static async Task<(bool Ok, string Reason, string? KeyId)> CheckBundleManifestAsync(OciRegistryClient client, OciRepository repo, OciDescriptor referrer, string manifestDigest, List<(ECDsa Key, string Id)> keys, CancellationToken cancellationToken)
    {
        OciImageManifest manifest;
        try
        {
            OciReference reference = repo.WithDigest(referrer.Digest);
            OciManifestResult fetched = await client.GetManifestAsync(reference, cancellationToken).ConfigureAwait(false);
            manifest = OciImageManifest.Parse(fetched.Content, reference.ToString());
        }
        catch (Exception ex) when (ex is OciNotFoundException or OciDigestMismatchException or OciInvalidArtifactException or OciSizeLimitException)
        {
            return (false, $"the bundle manifest cannot be used: {ex.Message}", null);
        }

        if (manifest.Subject is { } subject && !string.Equals(subject.Digest, manifestDigest, StringComparison.Ordinal))
        {
            return (false, $"digest mismatch: the bundle manifest's subject is {subject.Digest}, not {manifestDigest}", null);
        }

        OciDescriptor? layer = manifest.Layers.FirstOrDefault(l => l.MediaType.StartsWith(BundleMediaTypePrefix, StringComparison.Ordinal));
        if (layer is null)
        {
            return (false, $"malformed: the bundle manifest has no {CosignFormat.BundleMediaType} layer", null);
        }

        if (layer.Size > MaxBundleBytes)
        {
            return (false, $"malformed: the bundle is {layer.Size} bytes, more than {MaxBundleBytes}", null);
        }

        byte[] bundle;
        try
        {
            bundle = await client.PullBlobBytesAsync(repo, layer.Digest, MaxBundleBytes, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OciNotFoundException or OciDigestMismatchException or OciSizeLimitException)
        {
            return (false, $"the bundle blob {layer.Digest} cannot be used: {ex.Message}", null);
        }

        try
        {
            return CheckBundle(bundle, manifestDigest, keys);
        }
        catch (JsonException ex)
        {
            return (false, $"malformed bundle: not valid JSON: {ex.Message}", null);
        }
    }

    private static (bool Ok, string Reason, string? KeyId) CheckBundle(byte[] bundle, string manifestDigest, List<(ECDsa Key, string Id)> keys)
    {
        var reader = new Utf8JsonReader(bundle, new JsonReaderOptions { MaxDepth = 64 });
        using JsonDocument document = JsonDocument.ParseValue(ref reader);
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (false, "malformed bundle: not a JSON object", null);
        }

        if (!root.TryGetProperty("mediaType", out JsonElement mediaType) || mediaType.ValueKind != JsonValueKind.String ||
            !mediaType.GetString()!.StartsWith(BundleMediaTypePrefix, StringComparison.Ordinal))
        {
            return (false, "malformed bundle: no Sigstore bundle 'mediaType'", null);
        }

        if (!root.TryGetProperty("dsseEnvelope", out JsonElement envelope) || envelope.ValueKind != JsonValueKind.Object)
        {
            return root.TryGetProperty("messageSignature", out _)
                ? (false, "unsupported bundle: it holds a message signature; only DSSE envelopes are verified", null)
                : (false, "malformed bundle: no 'dsseEnvelope'", null);
        }

        if (!envelope.TryGetProperty("payloadType", out JsonElement payloadTypeElement) || payloadTypeElement.ValueKind != JsonValueKind.String ||
            !envelope.TryGetProperty("payload", out JsonElement payloadElement) || payloadElement.ValueKind != JsonValueKind.String ||
            !CosignFormat.TryDecodeBase64(payloadElement.GetString(), out byte[] body) ||
            !envelope.TryGetProperty("signatures", out JsonElement signatures) || signatures.ValueKind != JsonValueKind.Array)
        {
            return (false, "malformed DSSE envelope: it needs 'payloadType', a base64 'payload' and a 'signatures' array", null);
        }

        string payloadType = payloadTypeElement.GetString()!;
        byte[] pae = CosignFormat.PreAuthenticationEncoding(payloadType, body);
        string? keyId = null;
        foreach (JsonElement entry in signatures.EnumerateArray())
        {
            if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("sig", out JsonElement sig) && sig.ValueKind == JsonValueKind.String &&
                CosignFormat.TryDecodeBase64(sig.GetString(), out byte[] signature) && FindSigner(pae, signature, keys) is { } found)
            {
                keyId = found;
                break;
            }
        }

        if (keyId is null)
        {
            return (false, "signed by none of the keys (another key signed the DSSE envelope, or its payload was changed after signing)", null);
        }

        if (payloadType != CosignFormat.InTotoPayloadType)
        {
            return (false, $"malformed DSSE envelope: payloadType is '{payloadType}', not '{CosignFormat.InTotoPayloadType}'", null);
        }

        return CheckStatement(body, manifestDigest, keyId);
    }

    private static (bool Ok, string Reason, string? KeyId) CheckStatement(byte[] body, string manifestDigest, string keyId)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
        using JsonDocument document = JsonDocument.ParseValue(ref reader);
        JsonElement statement = document.RootElement;
        if (statement.ValueKind != JsonValueKind.Object ||
            !statement.TryGetProperty("_type", out JsonElement type) || type.ValueKind != JsonValueKind.String ||
            !type.GetString()!.StartsWith("https://in-toto.io/Statement/", StringComparison.Ordinal))
        {
            return (false, "malformed statement: no in-toto '_type'", null);
        }

        if (!statement.TryGetProperty("predicateType", out JsonElement predicateType) || predicateType.GetString() != CosignFormat.SignPredicateType)
        {
            return (false, $"malformed statement: predicateType is not '{CosignFormat.SignPredicateType}'", null);
        }

        if (!statement.TryGetProperty("subject", out JsonElement subjects) || subjects.ValueKind != JsonValueKind.Array)
        {
            return (false, "malformed statement: no 'subject' array", null);
        }

        string hex = manifestDigest[OciDigest.Sha256Prefix.Length..];
        var named = new List<string>();
        foreach (JsonElement subject in subjects.EnumerateArray())
        {
            if (subject.ValueKind == JsonValueKind.Object && subject.TryGetProperty("digest", out JsonElement digest) &&
                digest.ValueKind == JsonValueKind.Object && digest.TryGetProperty("sha256", out JsonElement sha) && sha.ValueKind == JsonValueKind.String)
            {
                string value = sha.GetString()!;
                if (string.Equals(value, hex, StringComparison.OrdinalIgnoreCase))
                {
                    return (true, "", keyId);
                }

                named.Add(OciDigest.Sha256Prefix + value);
            }
        }

        return named.Count == 0
            ? (false, "malformed statement: no subject has a sha256 digest", null)
            : (false, $"digest mismatch: the signed statement is for {string.Join(", ", named)}, not for {manifestDigest}", null);
    }

    private static string? FindSigner(byte[] data, byte[] signature, List<(ECDsa Key, string Id)> keys)
    {
        foreach ((ECDsa key, string id) in keys)
        {
            try
            {
                if (key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence))
                {
                    return id;
                }
            }
            catch (CryptographicException)
            {
                // not a DER signature this key can parse: not a match
            }
        }

        return null;
    }
}
