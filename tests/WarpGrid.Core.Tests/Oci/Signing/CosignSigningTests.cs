using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Oci.Signing;

namespace WarpGrid.Core.Tests.Oci.Signing;

/// <summary>cosign-format signing and verification against a real CNCF distribution registry, cross-checked with openssl.</summary>
public sealed class CosignSigningTests(AnonymousRegistryFixture fixture) : IClassFixture<AnonymousRegistryFixture>, IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("warpgrid-cosign-").FullName;

    private RegistryServer Registry => fixture.Server;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private async Task<(OciRegistryClient Client, OciReference Repository, string Digest)> PushArtifactAsync(OciRegistryClient client, string prefix, string version = "1.0.0")
    {
        OciReference reference = OciReference.Parse($"{Registry.Address}/{OciTestSupport.UniqueRepository(prefix)}:1.0");
        string digest = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations(version));
        return (client, reference, digest);
    }

    private static ECDsa NewKey() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    private static ECDsa PublicOf(ECDsa key) => CosignKeys.LoadPublic(key.ExportSubjectPublicKeyInfoPem());

    [Fact]
    public async Task A_signed_artifact_verifies_and_the_signature_has_cosigns_layout()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "signed");
        using ECDsa key = NewKey();

        CosignSignature signature = await CosignSigner.SignAsync(client, reference, digest, key);
        using ECDsa pub = PublicOf(key);
        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [pub], CancellationToken.None);

        Assert.True(result.Verified, result.Reason);
        Assert.Equal(CosignKeys.KeyId(pub), result.KeyId);
        Assert.Contains(result.KeyId!, result.Reason, StringComparison.Ordinal);

        Assert.Equal("sha256-" + digest["sha256:".Length..] + ".sig", signature.SignatureReference.Tag);
        string expectedPayload = "{\"critical\":{\"identity\":{\"docker-reference\":\"" + reference.RepositoryReference +
            "\"},\"image\":{\"docker-manifest-digest\":\"" + digest + "\"},\"type\":\"cosign container image signature\"},\"optional\":null}";
        Assert.Equal(expectedPayload, Encoding.UTF8.GetString(signature.Payload));

        OciManifestResult stored = await client.GetManifestAsync(signature.SignatureReference);
        Assert.Equal(OciMediaTypes.ImageManifest, stored.MediaType);
        Assert.Equal(signature.SignatureManifestDigest, stored.Digest);
        OciImageManifest manifest = OciImageManifest.Parse(stored.Content, "sig");
        Assert.Equal(OciMediaTypes.ImageConfig, manifest.Config.MediaType);
        OciDescriptor layer = Assert.Single(manifest.Layers);
        Assert.Equal(CosignFormat.SimpleSigningMediaType, layer.MediaType);
        Assert.Equal(signature.PayloadDigest, layer.Digest);
        Assert.Equal(signature.Signature, layer.Annotations[CosignFormat.SignatureAnnotation]);
        Assert.Equal(signature.Payload, await client.PullBlobBytesAsync(reference.RepositoryReference, layer.Digest, 1 << 20));
    }

    [Fact]
    public async Task A_second_signature_is_appended_and_either_key_verifies()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "twice");
        using ECDsa first = NewKey();
        using ECDsa second = NewKey();

        await CosignSigner.SignAsync(client, reference, digest, first);
        CosignSignature again = await CosignSigner.SignAsync(client, reference, digest, second, new Dictionary<string, string> { ["env"] = "prod" });

        Assert.Equal(2, again.SignatureCount);
        OciImageManifest manifest = OciImageManifest.Parse((await client.GetManifestAsync(again.SignatureReference)).Content, "sig");
        Assert.Equal(2, manifest.Layers.Count);
        Assert.Contains("\"optional\":{\"env\":\"prod\"}", Encoding.UTF8.GetString(again.Payload), StringComparison.Ordinal);
        using ECDsa firstPub = PublicOf(first);
        using ECDsa secondPub = PublicOf(second);
        SignatureVerification byFirst = await CosignVerifier.VerifyAsync(client, reference, digest, [firstPub], CancellationToken.None);
        SignatureVerification bySecond = await CosignVerifier.VerifyAsync(client, reference, digest, [secondPub], CancellationToken.None);
        Assert.True(byFirst.Verified, byFirst.Reason);
        Assert.True(bySecond.Verified, bySecond.Reason);
        Assert.NotEqual(byFirst.KeyId, bySecond.KeyId);
    }

    [Fact]
    public async Task An_unsigned_artifact_is_refused_with_no_signature()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "unsigned");
        using ECDsa key = NewKey();

        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [key], CancellationToken.None);

        Assert.False(result.Verified);
        Assert.Null(result.KeyId);
        Assert.StartsWith("no signature", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signature_by_another_key_is_refused()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "otherkey");
        using ECDsa signer = NewKey();
        using ECDsa other = NewKey();
        await CosignSigner.SignAsync(client, reference, digest, signer);

        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [PublicOf(other)], CancellationToken.None);

        Assert.False(result.Verified);
        Assert.Contains("signed by none of the keys", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tampered_payload_with_the_old_signature_is_refused()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "tampered");
        using ECDsa key = NewKey();
        CosignSignature signature = await CosignSigner.SignAsync(client, reference, digest, key);

        // Same digest claim, one byte of the identity changed, old signature kept.
        byte[] tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(signature.Payload).Replace("\"optional\":null", "\"optional\":{\"x\":\"1\"}", StringComparison.Ordinal));
        await RepushSignatureAsync(client, signature.SignatureReference, tampered, signature.Signature);

        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [PublicOf(key)], CancellationToken.None);

        Assert.False(result.Verified);
        Assert.Contains("signed by none of the keys", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signed_payload_for_another_digest_is_refused_as_a_digest_mismatch()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "mismatch");
        string otherDigest = OciDigest.Compute("another artifact"u8);
        using ECDsa key = NewKey();

        // A valid signature over a payload naming another digest, placed under this artifact's .sig tag.
        byte[] payload = CosignFormat.CreatePayload(reference.RepositoryReference.ToString(), otherDigest);
        string sig = Convert.ToBase64String(key.SignData(payload, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        await RepushSignatureAsync(client, reference.RepositoryReference.WithTag(CosignFormat.SignatureTag(digest)), payload, sig);

        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [PublicOf(key)], CancellationToken.None);

        Assert.False(result.Verified);
        Assert.Contains("digest mismatch", result.Reason, StringComparison.Ordinal);
        Assert.Contains(otherDigest, result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signature_annotation_that_is_not_base64_is_refused_as_malformed()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "malformed");
        using ECDsa key = NewKey();
        byte[] payload = CosignFormat.CreatePayload(reference.RepositoryReference.ToString(), digest);
        await RepushSignatureAsync(client, reference.RepositoryReference.WithTag(CosignFormat.SignatureTag(digest)), payload, "not base64 !!");

        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [PublicOf(key)], CancellationToken.None);

        Assert.False(result.Verified);
        Assert.Contains("malformed", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Openssl_verifies_the_signature_warpgrid_writes()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "openssl-verify");
        (string privatePem, string publicPem) = CosignKeys.Generate();
        using ECDsa key = CosignKeys.LoadPrivate(privatePem, null);
        CosignSignature signature = await CosignSigner.SignAsync(client, reference, digest, key);

        // Read back what the registry holds, not what the signer returned.
        OciImageManifest manifest = OciImageManifest.Parse((await client.GetManifestAsync(signature.SignatureReference)).Content, "sig");
        OciDescriptor layer = Assert.Single(manifest.Layers);
        await File.WriteAllBytesAsync(Path.Combine(_temp, "payload.json"), await client.PullBlobBytesAsync(reference.RepositoryReference, layer.Digest, 1 << 20));
        await File.WriteAllBytesAsync(Path.Combine(_temp, "sig.der"), Convert.FromBase64String(layer.Annotations[CosignFormat.SignatureAnnotation]));
        await File.WriteAllTextAsync(Path.Combine(_temp, "cosign.pub"), publicPem);

        (int exit, string output) = await OpensslAsync("dgst", "-sha256", "-verify", "cosign.pub", "-signature", "sig.der", "payload.json");

        Assert.True(exit == 0, output);
        Assert.Contains("Verified OK", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signature_made_by_openssl_in_cosign_layout_verifies()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "openssl-sign");
        Assert.Equal(0, (await OpensslAsync("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem")).Exit);
        Assert.Equal(0, (await OpensslAsync("ec", "-in", "key.pem", "-pubout", "-out", "pub.pem")).Exit);
        string payloadText = "{\"critical\":{\"identity\":{\"docker-reference\":\"" + reference.RepositoryReference + "\"},\"image\":{\"docker-manifest-digest\":\"" +
            digest + "\"},\"type\":\"cosign container image signature\"},\"optional\":{\"signed-by\":\"openssl\"}}";
        await File.WriteAllTextAsync(Path.Combine(_temp, "payload.json"), payloadText);
        (int exit, string output) = await OpensslAsync("dgst", "-sha256", "-sign", "key.pem", "-out", "sig.der", "payload.json");
        Assert.True(exit == 0, output);

        byte[] payload = await File.ReadAllBytesAsync(Path.Combine(_temp, "payload.json"));
        string sig = Convert.ToBase64String(await File.ReadAllBytesAsync(Path.Combine(_temp, "sig.der")));
        await RepushSignatureAsync(client, reference.RepositoryReference.WithTag(CosignFormat.SignatureTag(digest)), payload, sig);

        // The EC PRIVATE KEY openssl wrote loads as a private key too.
        using ECDsa privateKey = CosignKeys.LoadPrivate(await File.ReadAllTextAsync(Path.Combine(_temp, "key.pem")), null);
        using ECDsa pub = CosignKeys.LoadPublic(await File.ReadAllTextAsync(Path.Combine(_temp, "pub.pem")));
        Assert.Equal(CosignKeys.KeyId(privateKey), CosignKeys.KeyId(pub));
        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [NewKey(), pub], CancellationToken.None);

        Assert.True(result.Verified, result.Reason);
        Assert.Equal(CosignKeys.KeyId(pub), result.KeyId);
    }

    [Fact]
    public async Task A_dsse_bundle_under_the_referrers_fallback_tag_verifies_and_a_wrong_subject_is_refused()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "bundle");
        (_, OciReference otherReference, string otherDigest) = await PushArtifactAsync(client, "bundle-other", version: "2.0.0");
        Assert.NotEqual(digest, otherDigest);
        using ECDsa key = NewKey();
        using ECDsa pub = PublicOf(key);

        // The registry has no referrers API (CNCF distribution 2.8 answers 404), as cosign v3 finds out.
        Assert.Empty(await client.GetReferrersAsync(reference.RepositoryReference, digest));

        await PushBundleAsync(client, reference.RepositoryReference, digest, statementDigest: digest, key);
        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [pub], CancellationToken.None);
        Assert.True(result.Verified, result.Reason);
        Assert.Equal(CosignKeys.KeyId(pub), result.KeyId);
        Assert.Contains("Sigstore bundle", result.Reason, StringComparison.Ordinal);

        using ECDsa stranger = NewKey();
        SignatureVerification wrongKey = await CosignVerifier.VerifyAsync(client, reference, digest, [PublicOf(stranger)], CancellationToken.None);
        Assert.False(wrongKey.Verified);
        Assert.Contains("signed by none of the keys", wrongKey.Reason, StringComparison.Ordinal);

        // A statement about this artifact attached to another one: signed, but for the wrong digest.
        await PushBundleAsync(client, otherReference.RepositoryReference, otherDigest, statementDigest: digest, key);
        SignatureVerification mismatch = await CosignVerifier.VerifyAsync(client, otherReference, otherDigest, [pub], CancellationToken.None);
        Assert.False(mismatch.Verified);
        Assert.Contains("digest mismatch", mismatch.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dsse_signature_made_by_openssl_over_the_pae_verifies()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        (_, OciReference reference, string digest) = await PushArtifactAsync(client, "bundle-openssl");
        Assert.Equal(0, (await OpensslAsync("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem")).Exit);
        Assert.Equal(0, (await OpensslAsync("pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")).Exit);
        byte[] statement = Statement(reference.RepositoryReference.ToString(), digest);
        await File.WriteAllBytesAsync(Path.Combine(_temp, "pae.bin"), CosignFormat.PreAuthenticationEncoding(CosignFormat.InTotoPayloadType, statement));
        (int exit, string output) = await OpensslAsync("dgst", "-sha256", "-sign", "key.pem", "-out", "pae.sig", "pae.bin");
        Assert.True(exit == 0, output);

        byte[] bundle = Bundle(statement, await File.ReadAllBytesAsync(Path.Combine(_temp, "pae.sig")));
        await PushBundleManifestAsync(client, reference.RepositoryReference, digest, bundle);
        using ECDsa pub = CosignKeys.LoadPublic(await File.ReadAllTextAsync(Path.Combine(_temp, "pub.pem")));

        SignatureVerification result = await CosignVerifier.VerifyAsync(client, reference, digest, [pub], CancellationToken.None);

        Assert.True(result.Verified, result.Reason);
    }

    [Fact]
    public void Keys_load_from_pkcs8_encrypted_pkcs8_and_refuse_bad_input()
    {
        (string privatePem, string publicPem) = CosignKeys.Generate();
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", privatePem, StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", publicPem, StringComparison.Ordinal);
        using ECDsa key = CosignKeys.LoadPrivate(privatePem, null);
        using ECDsa pub = CosignKeys.LoadPublic(publicPem);
        Assert.Equal(CosignKeys.KeyId(key), CosignKeys.KeyId(pub));

        (string encrypted, string encryptedPub) = CosignKeys.Generate("correct horse");
        Assert.StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----", encrypted, StringComparison.Ordinal);
        using ECDsa decrypted = CosignKeys.LoadPrivate(encrypted, "correct horse");
        Assert.Equal(CosignKeys.KeyId(CosignKeys.LoadPublic(encryptedPub)), CosignKeys.KeyId(decrypted));
        Assert.Throws<FormatException>(() => CosignKeys.LoadPrivate(encrypted, "wrong"));
        Assert.Contains("no password", Assert.Throws<FormatException>(() => CosignKeys.LoadPrivate(encrypted, null)).Message, StringComparison.Ordinal);

        using ECDsa p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Contains("P-256", Assert.Throws<FormatException>(() => CosignKeys.LoadPublic(p384.ExportSubjectPublicKeyInfoPem())).Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => CosignKeys.LoadPublic(privatePem));
        Assert.Throws<FormatException>(() => CosignKeys.LoadPublic("not a pem"));
    }

    [Fact]
    public async Task Openssl_reads_the_encrypted_private_key()
    {
        (string encrypted, string publicPem) = CosignKeys.Generate("pw-123");
        await File.WriteAllTextAsync(Path.Combine(_temp, "enc.key"), encrypted);

        (int exit, string output) = await OpensslAsync("pkey", "-in", "enc.key", "-passin", "pass:pw-123", "-pubout");

        Assert.True(exit == 0, output);
        Assert.Contains(publicPem.Trim(), output, StringComparison.Ordinal);
    }

    // ---- helpers ---------------------------------------------------------------------------------------------------

    /// <summary>Replaces the .sig manifest with one layer: <paramref name="payload"/> with <paramref name="signature"/> as its annotation.</summary>
    private static async Task RepushSignatureAsync(OciRegistryClient client, OciReference signatureReference, byte[] payload, string signature)
    {
        OciRepository repo = signatureReference.RepositoryReference;
        OciBlobPushResult pushed = await client.PushBlobAsync(repo, payload);
        byte[] config = "{\"architecture\":\"\",\"os\":\"\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"u8.ToArray();
        OciBlobPushResult configPush = await client.PushBlobAsync(repo, config);
        var manifest = new OciImageManifest(
            new OciDescriptor(OciMediaTypes.ImageConfig, configPush.Digest, config.Length),
            [new OciDescriptor(CosignFormat.SimpleSigningMediaType, pushed.Digest, payload.Length) { Annotations = new Dictionary<string, string> { [CosignFormat.SignatureAnnotation] = signature } }]);
        await client.PutManifestAsync(signatureReference, manifest);
    }

    private static byte[] Statement(string name, string digest) => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["_type"] = CosignFormat.InTotoStatementType,
        ["subject"] = new[] { new Dictionary<string, object> { ["name"] = name, ["digest"] = new Dictionary<string, string> { ["sha256"] = digest["sha256:".Length..] } } },
        ["predicateType"] = CosignFormat.SignPredicateType,
        ["predicate"] = new Dictionary<string, object>(),
    }));

    private static byte[] Bundle(byte[] statement, byte[] signature) => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["mediaType"] = CosignFormat.BundleMediaType,
        ["verificationMaterial"] = new Dictionary<string, object> { ["publicKey"] = new Dictionary<string, string> { ["hint"] = "" } },
        ["dsseEnvelope"] = new Dictionary<string, object>
        {
            ["payload"] = Convert.ToBase64String(statement),
            ["payloadType"] = CosignFormat.InTotoPayloadType,
            ["signatures"] = new[] { new Dictionary<string, string> { ["sig"] = Convert.ToBase64String(signature), ["keyid"] = "" } },
        },
    }));

    /// <summary>Signs an in-toto statement naming <paramref name="statementDigest"/> and attaches the bundle to <paramref name="subjectDigest"/>.</summary>
    private static async Task PushBundleAsync(OciRegistryClient client, OciRepository repo, string subjectDigest, string statementDigest, ECDsa key)
    {
        byte[] statement = Statement(repo.ToString(), statementDigest);
        byte[] signature = key.SignData(CosignFormat.PreAuthenticationEncoding(CosignFormat.InTotoPayloadType, statement), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        await PushBundleManifestAsync(client, repo, subjectDigest, Bundle(statement, signature));
    }

    /// <summary>
    /// Attaches a bundle as cosign v3 does on a registry without the referrers API (BUNDLE_SPEC.md): the bundle blob, a
    /// manifest with artifactType and subject pushed by digest, and an image index under the tag sha256-&lt;hex&gt;.
    /// </summary>
    private static async Task PushBundleManifestAsync(OciRegistryClient client, OciRepository repo, string subjectDigest, byte[] bundle)
    {
        OciBlobPushResult bundleBlob = await client.PushBlobAsync(repo, bundle);
        byte[] empty = "{}"u8.ToArray();
        OciBlobPushResult emptyBlob = await client.PushBlobAsync(repo, empty);
        OciManifestResult subject = await client.GetManifestAsync(repo.WithDigest(subjectDigest));
        var manifest = new OciImageManifest(
            new OciDescriptor(OciMediaTypes.EmptyJson, emptyBlob.Digest, empty.Length),
            [new OciDescriptor(CosignFormat.BundleMediaType, bundleBlob.Digest, bundle.Length) { Annotations = new Dictionary<string, string> { [OciAnnotations.Title] = "sha256-" + bundleBlob.Digest[7..] + ".sigstore.json" } }])
        {
            ArtifactType = CosignFormat.BundleMediaType,
            Subject = new OciDescriptor(subject.MediaType, subjectDigest, subject.Content.Length),
            Annotations = new Dictionary<string, string> { ["dev.sigstore.bundle.content"] = "dsse-envelope", ["dev.sigstore.bundle.predicateType"] = CosignFormat.SignPredicateType },
        };
        byte[] manifestJson = manifest.ToJson();
        string manifestDigest = await client.PutManifestAsync(repo.WithDigest(OciDigest.Compute(manifestJson)), manifestJson, OciMediaTypes.ImageManifest);
        var index = new OciImageIndex([new OciDescriptor(OciMediaTypes.ImageManifest, manifestDigest, manifestJson.Length) { ArtifactType = CosignFormat.BundleMediaType, Annotations = manifest.Annotations }]);
        await client.PutManifestAsync(repo.WithTag(OciRegistryClient.ReferrersFallbackTag(subjectDigest)), index.ToJson(), OciMediaTypes.ImageIndex);
    }

    private async Task<(int Exit, string Output)> OpensslAsync(params string[] args)
    {
        var info = new ProcessStartInfo("openssl") { WorkingDirectory = _temp, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout + await stderr);
    }
}
