using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Oci.Signing;
using WarpGrid.Core.Tests.Oci;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// A real docker-registry and a real warpd with two namespaces: <c>signed</c> requires cosign signatures by key K1,
/// <c>open</c> requires none. The tests push the hello module, sign it (or not), and deploy it by OCI reference.
/// </summary>
public sealed class SignedDeployFixture : IAsyncLifetime
{
    internal const string SignedNamespace = "signed";
    internal const string OpenNamespace = "open";

    private TempDirectory? _data;

    internal RegistryServer Registry { get; private set; } = null!;

    internal WarpdProcess Warpd { get; private set; } = null!;

    internal OciRegistryClient Client { get; } = new(new OciClientOptions());

    /// <summary>K1, the namespace's signing key (private half).</summary>
    internal ECDsa K1 { get; private set; } = null!;

    /// <summary>K2, a key the namespace does not know.</summary>
    internal ECDsa K2 { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var (k1Private, k1Public) = CosignKeys.Generate();
        var (k2Private, _) = CosignKeys.Generate();
        K1 = CosignKeys.LoadPrivate(k1Private, null);
        K2 = CosignKeys.LoadPrivate(k2Private, null);

        Registry = await RegistryServer.StartAsync().ConfigureAwait(false);
        _data = new TempDirectory();
        Warpd = await WarpdProcess.StartAsync(_data.Path).ConfigureAwait(false);

        using (var signed = await Warpd.Api.PostAsJsonAsync("v1/namespaces", new { name = SignedNamespace, signingKeys = new[] { k1Public }, requireSignatures = true }).ConfigureAwait(false))
        {
            var body = await signed.Content.ReadAsStringAsync().ConfigureAwait(false);
            Assert.True(signed.StatusCode == HttpStatusCode.Created, $"POST /v1/namespaces ({SignedNamespace}) answered {(int)signed.StatusCode}: {body}");
            Assert.True((bool)JsonNode.Parse(body)!["requireSignatures"]!, body);
        }

        using (var open = await Warpd.Api.PostAsJsonAsync("v1/namespaces", new { name = OpenNamespace }).ConfigureAwait(false))
        {
            var body = await open.Content.ReadAsStringAsync().ConfigureAwait(false);
            Assert.True(open.StatusCode == HttpStatusCode.Created, $"POST /v1/namespaces ({OpenNamespace}) answered {(int)open.StatusCode}: {body}");
        }
    }

    public async Task DisposeAsync()
    {
        if (Warpd is not null)
        {
            try
            {
                await Warpd.StopAsync().ConfigureAwait(false);
            }
            finally
            {
                await Warpd.DisposeAsync().ConfigureAwait(false);
            }
        }

        _data?.Dispose();
        if (Registry is not null)
        {
            await Registry.DisposeAsync().ConfigureAwait(false);
        }

        Client.Dispose();
        K1?.Dispose();
        K2?.Dispose();
    }
}

/// <summary>Namespaces that require signatures admit only OCI references signed by one of their keys.</summary>
public sealed class SignedDeployTests(SignedDeployFixture fixture) : IClassFixture<SignedDeployFixture>
{
    private const string HelloBody = "Hello from WarpGrid!\n";

    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task A_reference_signed_with_the_namespace_key_is_admitted_and_served()
    {
        var (reference, digest) = await PushAsync("sig-ok");
        await CosignSigner.SignAsync(fixture.Client, reference, digest, fixture.K1);

        using var response = await DeployByReferenceAsync("sig-ok", SignedDeployFixture.SignedNamespace, reference);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"PUT answered {(int)response.StatusCode}: {body}" + Environment.NewLine + Warpd.Tail());
        var deployment = JsonNode.Parse(body)!;
        Assert.Equal("sig-ok", (string?)deployment["name"]);
        Assert.Equal("running", (string?)deployment["status"]);

        var stored = await Warpd.GetDeploymentAsync("sig-ok");
        Assert.NotNull(stored);
        Assert.Equal(reference.ToString(), (string?)stored["reference"]);
        Assert.Equal(digest, (string?)stored["manifestDigest"]);

        using var served = await Warpd.Ingress.GetAsync("sig-ok");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HelloBody, await served.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_unsigned_reference_is_refused_with_no_signature()
    {
        var (reference, _) = await PushAsync("sig-unsigned");

        using var response = await DeployByReferenceAsync("sig-unsigned", SignedDeployFixture.SignedNamespace, reference);

        var problem = await AssertRefusedAsync(response, "signature_refused");
        Assert.Contains("no signature", (string?)problem["detail"], StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("sig-unsigned"));
    }

    [Fact]
    public async Task A_reference_signed_by_another_key_is_refused()
    {
        var (reference, digest) = await PushAsync("sig-otherkey");
        await CosignSigner.SignAsync(fixture.Client, reference, digest, fixture.K2);

        // JSON body this time: the same admission applies.
        using var response = await Warpd.Api.PutAsJsonAsync($"v1/deployments/sig-otherkey?namespace={SignedDeployFixture.SignedNamespace}", new { manifest = Manifest("sig-otherkey", SignedDeployFixture.SignedNamespace), reference = reference.ToString() });

        var problem = await AssertRefusedAsync(response, "signature_refused");
        Assert.Contains("signed by none of the keys", (string?)problem["detail"], StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("sig-otherkey"));
    }

    [Fact]
    public async Task A_tampered_signature_payload_is_refused()
    {
        var (reference, digest) = await PushAsync("sig-tampered");
        var signature = await CosignSigner.SignAsync(fixture.Client, reference, digest, fixture.K1);

        // Same digest claim, the optional claims changed, the old signature kept.
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(signature.Payload).Replace("\"optional\":null", "\"optional\":{\"x\":\"1\"}", StringComparison.Ordinal));
        Assert.NotEqual(signature.Payload, tampered);
        await RepushSignatureAsync(signature.SignatureReference, tampered, signature.Signature);

        using var response = await DeployByReferenceAsync("sig-tampered", SignedDeployFixture.SignedNamespace, reference);

        var problem = await AssertRefusedAsync(response, "signature_refused");
        Assert.Contains("signed by none of the keys", (string?)problem["detail"], StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("sig-tampered"));
    }

    [Fact]
    public async Task A_valid_signature_of_another_artifact_is_refused_as_a_digest_mismatch()
    {
        var (reference, digest) = await PushAsync("sig-mismatch");
        var (otherReference, otherDigest) = await PushAsync("sig-mismatch-other");
        Assert.NotEqual(digest, otherDigest);
        var other = await CosignSigner.SignAsync(fixture.Client, otherReference, otherDigest, fixture.K1);

        // The other artifact's signature (its payload naming its digest, a valid K1 signature) copied to this artifact's .sig tag.
        Assert.Contains(otherDigest, Encoding.UTF8.GetString(other.Payload), StringComparison.Ordinal);
        await RepushSignatureAsync(reference.RepositoryReference.WithTag(CosignFormat.SignatureTag(digest)), other.Payload, other.Signature);

        using var response = await DeployByReferenceAsync("sig-mismatch", SignedDeployFixture.SignedNamespace, reference);

        var problem = await AssertRefusedAsync(response, "signature_refused");
        Assert.Contains("digest mismatch", (string?)problem["detail"], StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("sig-mismatch"));

        // The other artifact itself, signed with K1, is admitted.
        using var admitted = await DeployByReferenceAsync("sig-mismatch-other", SignedDeployFixture.SignedNamespace, otherReference);
        Assert.True(admitted.StatusCode == HttpStatusCode.Created, $"PUT answered {(int)admitted.StatusCode}: {await admitted.Content.ReadAsStringAsync()}");
    }

    [Fact]
    public async Task Uploaded_module_bytes_are_refused_with_signature_required()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);

        using var response = await Warpd.Api.PutAsync($"v1/deployments/sig-upload?namespace={SignedDeployFixture.SignedNamespace}", WarpApi.DeploymentForm(Manifest("sig-upload", SignedDeployFixture.SignedNamespace), module, "hello.wasm"));

        var problem = await AssertRefusedAsync(response, "signature_required");
        Assert.Contains(SignedDeployFixture.SignedNamespace, (string?)problem["detail"], StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("sig-upload"));
    }

    [Fact]
    public async Task A_namespace_without_the_requirement_admits_an_unsigned_reference()
    {
        var (reference, _) = await PushAsync("sig-open");

        using var response = await DeployByReferenceAsync("sig-open", SignedDeployFixture.OpenNamespace, reference);

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"PUT answered {(int)response.StatusCode}: {body}" + Environment.NewLine + Warpd.Tail());
        Assert.Equal(reference.ToString(), (string?)(await Warpd.GetDeploymentAsync("sig-open"))?["reference"]);
        using var served = await Warpd.Ingress.GetAsync("sig-open");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HelloBody, await served.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_namespace_refuses_signing_keys_that_are_not_p256_public_keys()
    {
        var (privatePem, _) = CosignKeys.Generate();
        using var brainpool = ECDsa.Create(ECCurve.NamedCurves.brainpoolP256r1);
        string[] refused = [privatePem, brainpool.ExportSubjectPublicKeyInfoPem(), "not a pem"];
        for (var i = 0; i < refused.Length; i++)
        {
            var name = $"sig-badkey-{i}";
            using var response = await Warpd.Api.PostAsJsonAsync("v1/namespaces", new { name, signingKeys = new[] { refused[i] }, requireSignatures = true });

            var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
            Assert.Contains("signingKeys[0]", problem.ToJsonString(), StringComparison.Ordinal);
            using var get = await Warpd.Api.GetAsync($"v1/namespaces/{name}");
            Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------------------

    /// <summary>A manifest in <paramref name="ns"/> serving the hello module on <c>/name</c>.</summary>
    private static string Manifest(string name, string ns) =>
        $"[package]\nname = \"{name}\"\nnamespace = \"{ns}\"\nversion = \"0.1.0\"\n\n[runtime]\nroute = \"/{name}\"\n";

    /// <summary>Pushes the hello module to a fresh repository; the version annotation makes each artifact's digest distinct.</summary>
    private async Task<(OciReference Reference, string Digest)> PushAsync(string name)
    {
        var reference = OciReference.Parse($"{fixture.Registry.Address}/{name}-{Guid.NewGuid().ToString("N")[..8]}:1.0");
        var annotations = new Dictionary<string, string>
        {
            [OciAnnotations.Created] = "2025-01-02T03:04:05Z",
            [OciAnnotations.Version] = "1.0.0+" + name,
            [OciAnnotations.Title] = "hello.wasm",
        };
        var digest = await fixture.Client.PushWasmAsync(reference, await File.ReadAllBytesAsync(TestPaths.Hello), annotations);
        return (reference, digest);
    }

    private Task<HttpResponseMessage> DeployByReferenceAsync(string name, string ns, OciReference reference)
    {
        var form = new MultipartFormDataContent
        {
            { new StringContent(Manifest(name, ns), Encoding.UTF8), "manifest" },
            { new StringContent(reference.ToString(), Encoding.UTF8), "reference" },
        };
        return Warpd.Api.PutAsync($"v1/deployments/{name}?namespace={ns}", form);
    }

    /// <summary>Asserts a 403 problem whose <c>type</c> ends in <paramref name="code"/>; returns it.</summary>
    private static async Task<JsonObject> AssertRefusedAsync(HttpResponseMessage response, string code)
    {
        var problem = await response.AssertProblemAsync(HttpStatusCode.Forbidden);
        var type = (string?)problem["type"];
        Assert.True(type is not null && type.EndsWith("/" + code, StringComparison.Ordinal), $"expected type .../{code}: {problem.ToJsonString()}");
        return problem;
    }

    /// <summary>Replaces the .sig manifest with one layer: <paramref name="payload"/> with <paramref name="signature"/> as its annotation.</summary>
    private async Task RepushSignatureAsync(OciReference signatureReference, byte[] payload, string signature)
    {
        var repo = signatureReference.RepositoryReference;
        var pushed = await fixture.Client.PushBlobAsync(repo, payload);
        var config = "{\"architecture\":\"\",\"os\":\"\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"u8.ToArray();
        var configPush = await fixture.Client.PushBlobAsync(repo, config);
        var manifest = new OciImageManifest(
            new OciDescriptor(OciMediaTypes.ImageConfig, configPush.Digest, config.Length),
            [new OciDescriptor(CosignFormat.SimpleSigningMediaType, pushed.Digest, payload.Length) { Annotations = new Dictionary<string, string> { [CosignFormat.SignatureAnnotation] = signature } }]);
        await fixture.Client.PutManifestAsync(signatureReference, manifest);
    }
}
