using System.Text.Json;
using WarpGrid.Core.Oci;

namespace WarpGrid.Core.Tests.Oci;

public sealed class OciImageLayoutTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "warpgrid-layout-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task Writes_and_reads_a_wasm_artifact()
    {
        byte[] wasm = OciTestSupport.HelloWasm;

        string digest = await OciImageLayout.WriteWasmAsync(_directory, "1.0", wasm, OciTestSupport.Annotations());
        WasmArtifactContent read = await OciImageLayout.ReadWasmAsync(_directory, "1.0");

        Assert.Equal(digest, read.ManifestDigest);
        Assert.Equal(wasm, read.Wasm);
        Assert.Equal("1.0.0", read.Annotations[OciAnnotations.Version]);
        Assert.Equal("""{"imageLayoutVersion":"1.0.0"}""", File.ReadAllText(Path.Combine(_directory, "oci-layout")));
        Assert.True(File.Exists(Path.Combine(_directory, "blobs", "sha256", digest[7..])));
        Assert.True(File.Exists(Path.Combine(_directory, "blobs", "sha256", OciDigest.Compute(wasm)[7..])));

        using JsonDocument index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_directory, "index.json")));
        JsonElement entry = Assert.Single(index.RootElement.GetProperty("manifests").EnumerateArray());
        Assert.Equal(2, index.RootElement.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(OciMediaTypes.ImageIndex, index.RootElement.GetProperty("mediaType").GetString());
        Assert.Equal(digest, entry.GetProperty("digest").GetString());
        Assert.Equal(OciMediaTypes.ImageManifest, entry.GetProperty("mediaType").GetString());
        Assert.Equal("1.0", entry.GetProperty("annotations").GetProperty(OciAnnotations.RefName).GetString());
    }

    [Fact]
    public async Task Keeps_one_entry_per_tag()
    {
        await OciImageLayout.WriteWasmAsync(_directory, "1.0", OciTestSupport.HelloWasm, OciTestSupport.Annotations("1.0"));
        await OciImageLayout.WriteWasmAsync(_directory, "2.0", OciTestSupport.HelloWasm, OciTestSupport.Annotations("2.0"));
        byte[] replacement = OciTestSupport.RandomWasmLike(1000);
        string replaced = await OciImageLayout.WriteWasmAsync(_directory, "1.0", replacement, OciTestSupport.Annotations("1.0-b"));

        Assert.Equal(["2.0", "1.0"], await OciImageLayout.ListTagsAsync(_directory));
        Assert.Equal(replaced, (await OciImageLayout.ReadWasmAsync(_directory, "1.0")).ManifestDigest);
        Assert.Equal(replacement, (await OciImageLayout.ReadWasmAsync(_directory, "1.0")).Wasm);
        Assert.Equal("2.0", (await OciImageLayout.ReadWasmAsync(_directory, "2.0")).Annotations[OciAnnotations.Version]);
    }

    [Fact]
    public async Task A_tampered_layout_blob_is_detected()
    {
        byte[] wasm = OciTestSupport.HelloWasm;
        await OciImageLayout.WriteWasmAsync(_directory, "1.0", wasm, OciTestSupport.Annotations());
        string layer = OciDigest.Compute(wasm);
        RegistryRoundTripTests.Corrupt(Path.Combine(_directory, "blobs", "sha256", layer[7..]));

        var ex = await Assert.ThrowsAsync<OciDigestMismatchException>(() => OciImageLayout.ReadWasmAsync(_directory, "1.0"));

        Assert.Equal(layer, ex.ExpectedDigest);
        Assert.Contains("is damaged", ex.Message, StringComparison.Ordinal);

        // Writing the same artifact again repairs the damaged blob.
        await OciImageLayout.WriteWasmAsync(_directory, "1.0", wasm, OciTestSupport.Annotations());
        Assert.Equal(wasm, (await OciImageLayout.ReadWasmAsync(_directory, "1.0")).Wasm);
    }

    [Fact]
    public async Task Unknown_tags_and_non_layouts_are_clear_errors()
    {
        await OciImageLayout.WriteWasmAsync(_directory, "1.0", OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        string empty = Path.Combine(_directory, "not-a-layout");
        Directory.CreateDirectory(empty);

        var tag = await Assert.ThrowsAsync<OciNotFoundException>(() => OciImageLayout.ReadWasmAsync(_directory, "9.9"));
        var notLayout = await Assert.ThrowsAsync<OciInvalidArtifactException>(() => OciImageLayout.ReadWasmAsync(empty, "1.0"));
        var tooBig = await Assert.ThrowsAsync<OciSizeLimitException>(() => OciImageLayout.ReadWasmAsync(_directory, "1.0", maxBytes: 10));
        var badTag = await Assert.ThrowsAsync<ArgumentException>(() => OciImageLayout.WriteWasmAsync(_directory, "bad tag", OciTestSupport.HelloWasm));

        Assert.Contains("Tag 9.9 not found", tag.Message, StringComparison.Ordinal);
        Assert.Contains("tags: 1.0", tag.Message, StringComparison.Ordinal);
        Assert.Contains("is not an OCI image layout", notLayout.Message, StringComparison.Ordinal);
        Assert.Equal(10, tooBig.LimitBytes);
        Assert.Contains("'bad tag' is not a valid tag", badTag.Message, StringComparison.Ordinal);
    }
}
