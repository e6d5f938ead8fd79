using System.Security.Cryptography;
using System.Text.Json;
using WarpGrid.Cli.Tests.Infrastructure;

namespace WarpGrid.Cli.Tests;

/// <summary>
/// <c>warp pack</c> of every sample with its real toolchain (scripts/install-toolchains.sh installs them), on a copy
/// of the sample: the output validates and the OCI layout has the CNCF Wasm artifact media types.
/// </summary>
public sealed class PackTests
{
    public static TheoryData<string, string, string, string> AllSamples => new()
    {
        // sample, lang, kind, an export the trigger needs
        { "hello", "c", "module", "_start" },
        { "hello-cpp", "cpp", "module", "_start" },
        { "hello-rust", "rust", "module", "_start" },
        { "hello-go", "go", "module", "_start" },
        { "hello-zig", "zig", "module", "_start" },
        { "hello-ts", "typescript", "module", "_start" },
        { "echo-wat", "wat", "module", "_start" },
        { "hello-js", "javascript", "component", "wasi:http/incoming-handler@0.2.10" },
    };

    [Theory]
    [MemberData(nameof(AllSamples))]
    public async Task Pack_builds_every_sample_with_its_toolchain_and_writes_a_wasm_oci_artifact(string sample, string lang, string kind, string export)
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo(sample, temp.Path);
        var output = Path.Combine(dir, sample + ".wasm");
        File.Delete(output); // prove the toolchain produced it

        var run = await Warp.RunAsync("pack", dir, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var json = run.Json;
        Assert.True(json.GetProperty("ok").GetBoolean());
        Assert.Equal(sample, json.GetProperty("name").GetString());
        Assert.Equal(lang, json.GetProperty("lang").GetString());
        Assert.Equal(kind, json.GetProperty("kind").GetString());
        Assert.True(json.GetProperty("build").GetProperty("built").GetBoolean(), run.ToString());
        Assert.Contains(export, json.GetProperty("exports").EnumerateArray().Select(e => e.GetString()));
        if (kind == "module")
        {
            Assert.Contains("memory", json.GetProperty("exports").EnumerateArray().Select(e => e.GetString()));
            Assert.All(json.GetProperty("imports").EnumerateArray(), i => Assert.StartsWith("wasi_snapshot_preview1.", i.GetString()));
        }

        Assert.True(File.Exists(output), $"{output} was not built\n{run}");
        var wasm = await File.ReadAllBytesAsync(output);
        Assert.Equal(Sha256(wasm), json.GetProperty("wasm").GetProperty("digest").GetString());
        Assert.Contains("compiling " + sample, run.Stderr);

        // OCI image layout: oci-layout, index.json -> manifest -> config + one application/wasm layer, every blob verified.
        var layout = Path.Combine(dir, ".warp", "oci");
        Assert.Equal(layout, json.GetProperty("artifact").GetProperty("layout").GetString());
        Assert.Contains("\"imageLayoutVersion\":\"1.0.0\"", await File.ReadAllTextAsync(Path.Combine(layout, "oci-layout")));
        using var index = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json")));
        var entry = Assert.Single(index.RootElement.GetProperty("manifests").EnumerateArray());
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", entry.GetProperty("mediaType").GetString());
        Assert.Equal("0.1.0", entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString());
        var manifestDigest = entry.GetProperty("digest").GetString()!;
        Assert.Equal(manifestDigest, json.GetProperty("artifact").GetProperty("digest").GetString());
        Assert.Contains(manifestDigest, run.Stdout.Length > 0 ? run.Stdout : string.Empty);

        var manifestBytes = await ReadBlobAsync(layout, manifestDigest);
        using var manifest = JsonDocument.Parse(manifestBytes);
        var root = manifest.RootElement;
        Assert.Equal(2, root.GetProperty("schemaVersion").GetInt32());
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", root.GetProperty("mediaType").GetString());
        var config = root.GetProperty("config");
        Assert.Equal("application/vnd.wasm.config.v0+json", config.GetProperty("mediaType").GetString());
        var layer = Assert.Single(root.GetProperty("layers").EnumerateArray());
        Assert.Equal("application/wasm", layer.GetProperty("mediaType").GetString());
        Assert.Equal(Sha256(wasm), layer.GetProperty("digest").GetString());
        Assert.Equal(wasm.Length, layer.GetProperty("size").GetInt64());
        Assert.Equal(wasm, await ReadBlobAsync(layout, layer.GetProperty("digest").GetString()!));
        using var configJson = JsonDocument.Parse(await ReadBlobAsync(layout, config.GetProperty("digest").GetString()!));
        Assert.Equal("wasm", configJson.RootElement.GetProperty("architecture").GetString());
        Assert.Equal(kind == "component" ? "wasip2" : "wasip1", configJson.RootElement.GetProperty("os").GetString());
        Assert.Equal(Sha256(wasm), configJson.RootElement.GetProperty("layerDigests")[0].GetString());
        Assert.Equal(sample, root.GetProperty("annotations").GetProperty("org.opencontainers.image.title").GetString());

        // .warp never ends up in git
        Assert.Contains("*", await File.ReadAllTextAsync(Path.Combine(dir, ".warp", ".gitignore")));
    }

    [Fact]
    public async Task Pack_twice_gives_the_same_artifact_digest_and_human_output_names_it()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello", temp.Path);
        var reproducible = new Dictionary<string, string?> { ["SOURCE_DATE_EPOCH"] = "1700000000" };
        var first = await Warp.RunAsync(reproducible, "pack", dir, "--json");
        var second = await Warp.RunAsync(reproducible, "pack", dir);
        Assert.Equal("2023-11-14T22:13:20Z", first.Json.GetProperty("artifact").GetProperty("created").GetString());
        Assert.True(second.ExitCode == 0, second.ToString());
        var digest = first.Json.GetProperty("artifact").GetProperty("digest").GetString()!;
        Assert.Contains("artifact  " + digest, second.Stdout);
        Assert.Contains("packed hello 0.1.0: c, WASI preview 1 module", second.Stdout);
    }

    [Fact]
    public async Task Pack_with_out_writes_the_layout_there()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("echo-wat", temp.Path);
        var layout = Path.Combine(temp.Path, "layout");
        var run = await Warp.RunAsync("pack", dir, "--out", layout, "--json");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.True(File.Exists(Path.Combine(layout, "index.json")));
        Assert.False(Directory.Exists(Path.Combine(dir, ".warp", "oci")));
    }

    private static async Task<byte[]> ReadBlobAsync(string layout, string digest)
    {
        Assert.StartsWith("sha256:", digest);
        var bytes = await File.ReadAllBytesAsync(Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]));
        Assert.Equal(digest, Sha256(bytes));
        return bytes;
    }

    private static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
}
