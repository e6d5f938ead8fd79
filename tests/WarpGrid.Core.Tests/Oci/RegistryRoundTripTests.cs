using System.Security.Cryptography;
using System.Text;
using WarpGrid.Core.Oci;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>Push, pull, resolve, list and the failure cases against a real anonymous registry.</summary>
public sealed class RegistryRoundTripTests(AnonymousRegistryFixture fixture) : IClassFixture<AnonymousRegistryFixture>
{
    private const long TwentyMiB = 20L * 1024 * 1024;

    private RegistryServer Registry => fixture.Server;

    private OciReference Ref(string repositoryAndTag) => OciReference.Parse($"{Registry.Address}/{repositoryAndTag}");

    private OciRepository Repo(string repository) => OciRepository.Parse($"{Registry.Address}/{repository}");

    [Fact]
    public async Task Hello_wasm_round_trips_as_a_cncf_wasm_artifact()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        byte[] wasm = OciTestSupport.HelloWasm;
        OciReference reference = Ref(OciTestSupport.UniqueRepository("hello") + ":1.0");

        string digest = await client.PushWasmAsync(reference, wasm, OciTestSupport.Annotations());
        WasmArtifactContent pulled = await client.PullWasmAsync(reference);

        Assert.Equal(digest, pulled.ManifestDigest);
        Assert.Equal(wasm, pulled.Wasm);
        Assert.False(pulled.IsComponent);
        Assert.Equal("1.0.0", pulled.Annotations[OciAnnotations.Version]);
        Assert.Equal(OciTestSupport.FixedCreated, pulled.Annotations[OciAnnotations.Created]);
        Assert.Equal(OciMediaTypes.WasmConfig, pulled.Manifest.ArtifactType);
        OciDescriptor layer = Assert.Single(pulled.Manifest.Layers);
        Assert.Equal(OciMediaTypes.WasmLayer, layer.MediaType);
        Assert.Equal("hello.wasm", layer.Annotations[OciAnnotations.Title]);

        string config = Encoding.UTF8.GetString(pulled.ConfigJson);
        Assert.Contains("\"architecture\":\"wasm\"", config, StringComparison.Ordinal);
        Assert.Contains("\"os\":\"wasip1\"", config, StringComparison.Ordinal);
        Assert.Contains($"\"layerDigests\":[\"{layer.Digest}\"]", config, StringComparison.Ordinal);

        // The manifest as stored is an OCI image manifest with the Wasm config media type.
        OciManifestResult manifest = await client.GetManifestAsync(reference);
        Assert.Equal(OciMediaTypes.ImageManifest, manifest.MediaType);
        Assert.Equal(digest, manifest.Digest);
        Assert.Equal(digest, OciDigest.Compute(manifest.Content));
    }

    [Fact]
    public async Task Pushing_the_same_artifact_again_uploads_no_blobs_and_keeps_the_digest()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("again") + ":1");

        string first = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        OciBlobPushResult again = await client.PushBlobAsync(reference.RepositoryReference, OciTestSupport.HelloWasm);
        string second = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());

        Assert.True(again.AlreadyExisted);
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task Resolves_a_tag_to_a_digest_and_pulls_by_digest()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("resolve") + ":stable");
        string pushed = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());

        string resolved = await client.ResolveAsync(reference);
        OciReference byDigest = reference.RepositoryReference.WithDigest(resolved);
        WasmArtifactContent pulled = await client.PullWasmAsync(byDigest);
        OciManifestResult manifest = await client.GetManifestAsync(byDigest);

        Assert.Equal(pushed, resolved);
        Assert.Equal(resolved, pulled.ManifestDigest);
        Assert.Equal(OciTestSupport.HelloWasm, pulled.Wasm);
        Assert.Equal(resolved, manifest.Digest);
        Assert.Equal(resolved, await client.ResolveAsync(byDigest));
    }

    [Fact]
    public async Task Lists_tags()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        string repository = OciTestSupport.UniqueRepository("tags");
        string[] tags = ["1.0", "1.1", "2.0", "latest", "nightly"];
        foreach (string tag in tags)
        {
            await client.PushWasmAsync(Ref($"{repository}:{tag}"), OciTestSupport.HelloWasm, OciTestSupport.Annotations(tag));
        }

        IReadOnlyList<string> listed = await client.ListTagsAsync(Repo(repository));

        Assert.Equal(tags.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Lists_tags_across_pages_following_link_headers()
    {
        // distribution 2.8 ignores "n" on tags/list (pagination came in 3.0), so a handler in front of the real
        // registry pages its full answer the way the distribution spec describes: ?n=&last=, Link: <...>; rel="next".
        using OciRegistryClient pusher = OciTestSupport.Client();
        string repository = OciTestSupport.UniqueRepository("pages");
        string[] tags = ["a", "b", "c", "d", "e"];
        foreach (string tag in tags)
        {
            await pusher.PushWasmAsync(Ref($"{repository}:{tag}"), OciTestSupport.HelloWasm, OciTestSupport.Annotations(tag));
        }

        var handler = new PagingTagsHandler();
        using OciRegistryClient client = OciTestSupport.Client(o => o.TagsPageSize = 2, handler);

        IReadOnlyList<string> listed = await client.ListTagsAsync(Repo(repository));

        Assert.Equal(tags, listed);
        Assert.Equal(["n=2", "n=2&last=b", "n=2&last=d"], handler.Queries);
    }

    [Fact]
    public async Task Chunked_upload_of_a_20_MiB_raw_blob_round_trips()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciRepository repository = Repo(OciTestSupport.UniqueRepository("big"));
        byte[] blob = OciTestSupport.RandomBytes((int)TwentyMiB + 12345);
        string digest = OciDigest.Compute(blob);
        var reports = new List<OciTransferProgress>();
        var progress = new SynchronousProgress(reports.Add);

        // From a stream of unknown length: the client reads up to the threshold, then goes chunked.
        OciBlobPushResult pushed = await client.PushBlobAsync(repository, new NonSeekableStream(new MemoryStream(blob)), digest, progress);

        Assert.True(pushed.Chunked);
        Assert.False(pushed.AlreadyExisted);
        Assert.Equal(digest, pushed.Digest);
        Assert.Equal(blob.Length, pushed.Size);
        Assert.Equal(blob.Length, reports[^1].BytesTransferred);
        Assert.True(await client.BlobExistsAsync(repository, digest));

        string file = Path.Combine(Path.GetTempPath(), $"warpgrid-oci-test-{Guid.NewGuid():N}.bin");
        try
        {
            long size = await client.PullBlobToFileAsync(repository, digest, file);
            Assert.Equal(blob.Length, size);
            Assert.Equal(digest, OciDigest.FromHash(SHA256.HashData(File.ReadAllBytes(file))));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Chunked_upload_of_a_20_MiB_wasm_layer_round_trips()
    {
        using OciRegistryClient client = OciTestSupport.Client(o => o.UploadChunkSize = 4 * 1024 * 1024);
        OciReference reference = Ref(OciTestSupport.UniqueRepository("bigwasm") + ":1");
        byte[] wasm = OciTestSupport.RandomWasmLike((int)TwentyMiB);
        long lastReport = 0;

        string digest = await client.PushWasmAsync(reference, wasm, OciTestSupport.Annotations(), new SynchronousProgress(p => lastReport = p.BytesTransferred));
        WasmArtifactContent pulled = await client.PullWasmAsync(reference, maxBytes: 64L * 1024 * 1024);

        Assert.Equal(wasm.Length, lastReport);
        Assert.Equal(digest, pulled.ManifestDigest);
        Assert.Equal(OciDigest.Compute(wasm), OciDigest.Compute(pulled.Wasm));
    }

    [Fact]
    public async Task Monolithic_and_chunked_uploads_can_be_forced()
    {
        using OciRegistryClient client = OciTestSupport.Client(o => o.UploadChunkSize = 64 * 1024);
        OciRepository repository = Repo(OciTestSupport.UniqueRepository("modes"));
        byte[] small = OciTestSupport.RandomBytes(200_000);
        byte[] other = OciTestSupport.RandomBytes(200_000);

        OciBlobPushResult chunked = await client.PushBlobAsync(repository, small, mode: OciUploadMode.Chunked);
        OciBlobPushResult monolithic = await client.PushBlobAsync(repository, new MemoryStream(other), mode: OciUploadMode.Monolithic);

        Assert.True(chunked.Chunked);
        Assert.False(monolithic.Chunked);
        Assert.Equal(small, await client.PullBlobBytesAsync(repository, chunked.Digest, small.Length));
        Assert.Equal(other, await client.PullBlobBytesAsync(repository, monolithic.Digest, other.Length));
    }

    [Fact]
    public async Task A_declared_digest_that_does_not_match_the_content_is_refused()
    {
        using OciRegistryClient client = OciTestSupport.Client(o => o.UploadChunkSize = 64 * 1024);
        OciRepository repository = Repo(OciTestSupport.UniqueRepository("declared"));
        byte[] blob = OciTestSupport.RandomBytes(300_000);
        string wrong = OciDigest.Compute("something else"u8);

        var memory = await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PushBlobAsync(repository, blob, wrong));
        var streamed = await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PushBlobAsync(repository, new MemoryStream(blob), wrong, mode: OciUploadMode.Chunked));

        Assert.Contains("nothing was uploaded", memory.Message, StringComparison.Ordinal);
        Assert.Contains("cancelled before it was committed", streamed.Message, StringComparison.Ordinal);
        Assert.False(await client.BlobExistsAsync(repository, wrong));
        Assert.False(await client.BlobExistsAsync(repository, OciDigest.Compute(blob)));
    }

    [Fact]
    public async Task Unknown_tag_and_unknown_repository_are_not_found_errors()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        string repository = OciTestSupport.UniqueRepository("hello");
        await client.PushWasmAsync(Ref(repository + ":1.0"), OciTestSupport.HelloWasm, OciTestSupport.Annotations());

        var tag = await Assert.ThrowsAsync<OciNotFoundException>(() => client.PullWasmAsync(Ref(repository + ":1.2")));
        var manifest = await Assert.ThrowsAsync<OciNotFoundException>(() => client.GetManifestAsync(Ref(repository + ":1.2")));
        var repo = await Assert.ThrowsAsync<OciNotFoundException>(() => client.GetManifestAsync(Ref("no-such-repo/at-all:1")));
        var tags = await Assert.ThrowsAsync<OciNotFoundException>(() => client.ListTagsAsync(Repo("no-such-repo/at-all")));
        var blob = await Assert.ThrowsAsync<OciNotFoundException>(() => client.PullBlobBytesAsync(Repo(repository), OciDigest.Compute("nope"u8), 100));

        Assert.Contains($"tag 1.2 not found in {Registry.Address}/{repository}", tag.Message, StringComparison.Ordinal);
        Assert.Equal(Registry.Address, tag.Registry);
        Assert.Contains("MANIFEST_UNKNOWN", manifest.Message, StringComparison.Ordinal);
        Assert.Contains($"tag 1 not found in {Registry.Address}/no-such-repo/at-all", repo.Message, StringComparison.Ordinal);
        Assert.Contains($"Repository {Registry.Address}/no-such-repo/at-all not found", tags.Message, StringComparison.Ordinal);
        Assert.Contains("NAME_UNKNOWN", tags.Message, StringComparison.Ordinal);
        Assert.Contains("not found", blob.Message, StringComparison.Ordinal);
        Assert.False(await client.BlobExistsAsync(Repo(repository), OciDigest.Compute("nope"u8)));
    }

    [Fact]
    public async Task A_tampered_blob_in_the_registry_storage_is_a_digest_mismatch_and_nothing_is_returned()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciRepository repository = Repo(OciTestSupport.UniqueRepository("tamper"));
        byte[] blob = OciTestSupport.RandomBytes(3 * 1024 * 1024);
        OciBlobPushResult pushed = await client.PushBlobAsync(repository, blob);
        Corrupt(Registry.BlobDataPath(pushed.Digest));

        var destination = new MemoryStream();
        var ex = await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PullBlobAsync(repository, pushed.Digest, destination));
        await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PullBlobBytesAsync(repository, pushed.Digest, blob.Length));
        string directory = Path.Combine(Path.GetTempPath(), "warpgrid-oci-tamper-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            string file = Path.Combine(directory, "blob.bin");
            await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PullBlobToFileAsync(repository, pushed.Digest, file));
            Assert.Empty(Directory.GetFiles(directory)); // no partial file left behind
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        Assert.Equal(0, destination.Length);
        Assert.Equal(pushed.Digest, ex.ExpectedDigest);
        Assert.NotEqual(pushed.Digest, ex.ActualDigest);
        Assert.Contains(pushed.Digest, ex.Message, StringComparison.Ordinal);
        Assert.Contains(ex.ActualDigest, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tampered_wasm_layer_fails_the_artifact_pull()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("tamperwasm") + ":1");
        byte[] wasm = OciTestSupport.RandomWasmLike(256 * 1024);
        await client.PushWasmAsync(reference, wasm, OciTestSupport.Annotations());
        Corrupt(Registry.BlobDataPath(OciDigest.Compute(wasm)));

        var ex = await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PullWasmAsync(reference));

        Assert.Equal(OciDigest.Compute(wasm), ex.ExpectedDigest);
    }

    [Fact]
    public async Task An_artifact_whose_layer_is_not_wasm_is_refused()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("notwasm") + ":1");
        byte[] notWasm = "#!/bin/sh\necho this is not wasm\n"u8.ToArray();
        byte[] config = """{"architecture":"wasm","os":"wasip1"}"""u8.ToArray();
        await PushManifestAsync(client, reference, OciMediaTypes.WasmConfig, config, (OciMediaTypes.WasmLayer, notWasm));

        var ex = await Assert.ThrowsAsync<OciInvalidArtifactException>(() => client.PullWasmAsync(reference));

        Assert.Contains($"Artifact {reference} is not wasm", ex.Message, StringComparison.Ordinal);
        Assert.Contains("23 21 2f 62", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_container_image_is_not_a_wasm_artifact()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("image") + ":1");
        byte[] config = """{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"""u8.ToArray();
        await PushManifestAsync(client, reference, OciMediaTypes.ImageConfig, config,
            ("application/vnd.oci.image.layer.v1.tar+gzip", OciTestSupport.RandomBytes(100)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", OciTestSupport.RandomBytes(100)));

        var ex = await Assert.ThrowsAsync<OciInvalidArtifactException>(() => client.PullWasmAsync(reference));

        Assert.Contains($"Artifact {reference} is not a Wasm artifact: config media type '{OciMediaTypes.ImageConfig}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("layers [application/vnd.oci.image.layer.v1.tar+gzip, application/vnd.oci.image.layer.v1.tar+gzip]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_artifact_larger_than_max_bytes_is_refused_before_download()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("oversized") + ":1");
        byte[] wasm = OciTestSupport.RandomWasmLike(1024 * 1024);
        await client.PushWasmAsync(reference, wasm, OciTestSupport.Annotations());
        long downloaded = 0;

        var artifact = await Assert.ThrowsAsync<OciSizeLimitException>(() => client.PullWasmAsync(reference, maxBytes: 64 * 1024, new SynchronousProgress(p => downloaded = p.BytesTransferred)));
        var blob = await Assert.ThrowsAsync<OciSizeLimitException>(() => client.PullBlobAsync(reference.RepositoryReference, OciDigest.Compute(wasm), new MemoryStream(), maxBytes: 1000));

        Assert.Equal(0, downloaded);
        Assert.Equal(64 * 1024, artifact.LimitBytes);
        Assert.Equal(wasm.Length, artifact.ActualBytes);
        Assert.Contains("more than the limit of 65536 bytes", artifact.Message, StringComparison.Ordinal);
        Assert.Equal(1000, blob.LimitBytes);
    }

    [Fact]
    public async Task A_manifest_fetched_by_digest_is_verified()
    {
        using OciRegistryClient client = OciTestSupport.Client();
        OciReference reference = Ref(OciTestSupport.UniqueRepository("mdigest") + ":1");
        Dictionary<string, string> annotations = OciTestSupport.Annotations();
        annotations[OciAnnotations.Description] = "WarpGrid hello sample " + Guid.NewGuid(); // a manifest no other test shares
        string digest = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, annotations);
        // Change one character inside a JSON string so the registry still serves it as a valid manifest.
        string stored = Registry.BlobDataPath(digest);
        string json = File.ReadAllText(stored);
        Assert.Contains("WarpGrid hello sample", json, StringComparison.Ordinal);
        File.WriteAllText(stored, json.Replace("WarpGrid hello sample", "WarpGrid hellO sample", StringComparison.Ordinal));

        var ex = await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.GetManifestAsync(reference.RepositoryReference.WithDigest(digest)));

        Assert.Equal(digest, ex.ExpectedDigest);
    }

    [Fact]
    public async Task A_layout_pushed_to_a_registry_keeps_its_digest_and_matches_a_direct_push()
    {
        string directory = Path.Combine(Path.GetTempPath(), "warpgrid-layout-" + Guid.NewGuid().ToString("N")[..10]);
        string digest = await OciImageLayout.WriteWasmAsync(directory, "1.0", OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        using OciRegistryClient client = OciTestSupport.Client();
        string repository = OciTestSupport.UniqueRepository("fromlayout");
        var target = OciReference.Parse($"{Registry.Address}/{repository}:1.0");

        string pushed = await client.PushAsync(directory, "1.0", target);
        string direct = await client.PushWasmAsync(OciReference.Parse($"{Registry.Address}/{repository}:direct"), OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        WasmArtifactContent pulled = await client.PullWasmAsync(target);

        Assert.Equal(digest, pushed);
        Assert.Equal(digest, direct);
        Assert.Equal(OciTestSupport.HelloWasm, pulled.Wasm);
        Directory.Delete(directory, recursive: true);
    }

    private static async Task PushManifestAsync(OciRegistryClient client, OciReference reference, string configMediaType, byte[] config, params (string MediaType, byte[] Bytes)[] layers)
    {
        OciRepository repository = reference.RepositoryReference;
        await client.PushBlobAsync(repository, config);
        var descriptors = new List<OciDescriptor>();
        foreach ((string mediaType, byte[] bytes) in layers)
        {
            OciBlobPushResult pushed = await client.PushBlobAsync(repository, bytes);
            descriptors.Add(new OciDescriptor(mediaType, pushed.Digest, bytes.Length));
        }

        var manifest = new OciImageManifest(new OciDescriptor(configMediaType, OciDigest.Compute(config), config.Length), descriptors);
        await client.PutManifestAsync(reference, manifest.ToJson(), OciMediaTypes.ImageManifest);
    }

    /// <summary>Flips bytes in the middle of a file, keeping its length.</summary>
    internal static void Corrupt(string path)
    {
        Assert.True(File.Exists(path), $"expected the registry to store the blob at {path}");
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        long middle = file.Length / 2;
        file.Position = middle;
        int b = file.ReadByte();
        file.Position = middle;
        file.WriteByte((byte)(b ^ 0xff));
    }
}

/// <summary>Pages the real registry's tag list per the distribution spec (<c>n</c>, <c>last</c>, <c>Link</c>).</summary>
internal sealed class PagingTagsHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    public List<string> Queries { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Uri uri = request.RequestUri!;
        if (!uri.AbsolutePath.EndsWith("/tags/list", StringComparison.Ordinal))
        {
            return await base.SendAsync(request, cancellationToken);
        }

        Queries.Add(uri.Query.TrimStart('?'));
        var query = System.Web.HttpUtility.ParseQueryString(uri.Query);
        int n = int.Parse(query["n"] ?? "1000", System.Globalization.CultureInfo.InvariantCulture);
        string? last = query["last"];
        using var full = new HttpRequestMessage(HttpMethod.Get, uri.GetLeftPart(UriPartial.Path));
        using HttpResponseMessage upstream = await base.SendAsync(full, cancellationToken);
        using var document = System.Text.Json.JsonDocument.Parse(await upstream.Content.ReadAsStringAsync(cancellationToken));
        List<string> all = document.RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()!).Order(StringComparer.Ordinal).ToList();
        List<string> page = all.Where(t => last is null || string.CompareOrdinal(t, last) > 0).Take(n).ToList();
        var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK)
        {
            Content = new StringContent(System.Text.Json.JsonSerializer.Serialize(new { name = document.RootElement.GetProperty("name").GetString(), tags = page }), Encoding.UTF8, "application/json"),
            RequestMessage = request,
        };
        if (page.Count == n && all.Count > 0 && page[^1] != all[^1])
        {
            response.Headers.TryAddWithoutValidation("Link", $"<{uri.AbsolutePath}?n={n}&last={page[^1]}>; rel=\"next\"");
        }

        return response;
    }
}

/// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress(Action<OciTransferProgress> report) : IProgress<OciTransferProgress>
{
    public void Report(OciTransferProgress value) => report(value);
}
