using System.Security.Cryptography;
using System.Text.Json;

namespace WarpGrid.Core.Oci.Signing;

/// <summary>A signature <see cref="CosignSigner"/> pushed.</summary>
/// <param name="SignatureReference">The signature manifest's place: the repository and the tag <c>sha256-&lt;hex&gt;.sig</c>.</param>
/// <param name="SignatureManifestDigest">The digest of the signature manifest as pushed.</param>
/// <param name="PayloadDigest">The digest of the simple-signing payload blob.</param>
/// <param name="Payload">The exact payload bytes that were signed.</param>
/// <param name="Signature">The base64 DER ECDSA signature (the <see cref="CosignFormat.SignatureAnnotation"/> value).</param>
/// <param name="SignatureCount">How many signatures the manifest holds now (earlier ones are kept).</param>
public sealed record CosignSignature(OciReference SignatureReference, string SignatureManifestDigest, string PayloadDigest, byte[] Payload, string Signature, int SignatureCount);

/// <summary>
/// Signs an artifact's manifest digest in cosign's key-based legacy format: a simple-signing payload blob
/// (<see cref="CosignFormat.SimpleSigningMediaType"/>) signed with ECDSA P-256 over SHA-256 of its exact bytes, the DER
/// signature in base64 in the layer annotation <see cref="CosignFormat.SignatureAnnotation"/>, in an OCI image manifest
/// under the tag <c>sha256-&lt;hex&gt;.sig</c> of the same repository. Earlier signatures under that tag are kept and the
/// new one is appended, as cosign does.
/// </summary>
/// <remarks>
/// Nothing is uploaded to a transparency log: verifiers check it as <c>cosign verify --key … --insecure-ignore-tlog</c>
/// does. Two signers appending to the same tag at once can lose one of the signatures (the registry has no
/// compare-and-swap on tags).
/// </remarks>
public static class CosignSigner
{
    /// <summary>The largest existing signature manifest appended to (the client's manifest limit also applies).</summary>
    private const int MaxExistingLayers = 1000;

    /// <summary>Signs <paramref name="manifestDigest"/> and pushes the signature.</summary>
    /// <param name="client">The registry client.</param>
    /// <param name="repository">The artifact's repository (a tag or digest on it is ignored); its <c>host/name</c> is the payload's <c>docker-reference</c>.</param>
    /// <param name="manifestDigest">The digest of the artifact's manifest.</param>
    /// <param name="privateKey">An ECDSA P-256 private key (<see cref="CosignKeys.LoadPrivate"/>).</param>
    /// <param name="annotations">Claims written to the payload's <c>optional</c> object; none by default.</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <exception cref="ArgumentException">The digest is malformed or the key is not P-256.</exception>
    /// <exception cref="OciInvalidArtifactException">The signature tag holds something that is not an image manifest.</exception>
    /// <exception cref="OciException">The registry refused or could not be reached.</exception>
    public static async Task<CosignSignature> SignAsync(
        OciRegistryClient client,
        OciReference repository,
        string manifestDigest,
        ECDsa privateKey,
        IReadOnlyDictionary<string, string>? annotations = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(repository);
        OciDigest.Validate(manifestDigest, nameof(manifestDigest));
        CosignKeys.EnsureP256(privateKey, nameof(privateKey));

        OciRepository repo = repository.RepositoryReference;
        byte[] payload = CosignFormat.CreatePayload(repo.ToString(), manifestDigest, annotations);
        string signature = Convert.ToBase64String(privateKey.SignData(payload, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        string payloadDigest = OciDigest.Compute(payload);
        OciReference signatureReference = repo.WithTag(CosignFormat.SignatureTag(manifestDigest));

        var layers = new List<OciDescriptor>(await ExistingLayersAsync(client, signatureReference, cancellationToken).ConfigureAwait(false));
        layers.Add(new OciDescriptor(CosignFormat.SimpleSigningMediaType, payloadDigest, payload.Length)
        {
            Annotations = new Dictionary<string, string>(StringComparer.Ordinal) { [CosignFormat.SignatureAnnotation] = signature },
        });

        byte[] config = ConfigJson(layers);
        await client.PushBlobAsync(repo, payload, payloadDigest, cancellationToken: cancellationToken).ConfigureAwait(false);
        OciBlobPushResult configPush = await client.PushBlobAsync(repo, config, cancellationToken: cancellationToken).ConfigureAwait(false);
        var manifest = new OciImageManifest(new OciDescriptor(OciMediaTypes.ImageConfig, configPush.Digest, config.Length), layers);
        string manifestDigestPushed = await client.PutManifestAsync(signatureReference, manifest, cancellationToken).ConfigureAwait(false);
        return new CosignSignature(signatureReference, manifestDigestPushed, payloadDigest, payload, signature, layers.Count);
    }

    private static async Task<IReadOnlyList<OciDescriptor>> ExistingLayersAsync(OciRegistryClient client, OciReference signatureReference, CancellationToken cancellationToken)
    {
        OciManifestResult existing;
        try
        {
            existing = await client.GetManifestAsync(signatureReference, cancellationToken).ConfigureAwait(false);
        }
        catch (OciNotFoundException)
        {
            return [];
        }

        OciImageManifest manifest = OciImageManifest.Parse(existing.Content, signatureReference.ToString());
        if (manifest.Layers.Count >= MaxExistingLayers)
        {
            throw new OciInvalidArtifactException($"The signature manifest {signatureReference} already holds {manifest.Layers.Count} layers; not appending more.");
        }

        return manifest.Layers;
    }

    /// <summary>A minimal OCI image config whose <c>rootfs.diff_ids</c> list the layers (the payloads are not compressed, so diff id = digest).</summary>
    private static byte[] ConfigJson(IReadOnlyList<OciDescriptor> layers)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("architecture", "");
            writer.WriteString("os", "");
            writer.WriteStartObject("config");
            writer.WriteEndObject();
            writer.WriteStartObject("rootfs");
            writer.WriteString("type", "layers");
            writer.WriteStartArray("diff_ids");
            foreach (OciDescriptor layer in layers)
            {
                writer.WriteStringValue(layer.Digest);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
