using System.Security.Cryptography;
using System.Text.Json;

namespace WarpGrid.Core.Oci;

/// <summary>
/// Wasm artifacts in an OCI image layout directory, for offline use (<c>warp pack</c> output, air-gapped nodes):
/// <c>oci-layout</c> (<c>{"imageLayoutVersion":"1.0.0"}</c>), <c>index.json</c> (an image index whose manifest
/// descriptors carry <c>org.opencontainers.image.ref.name</c> = the tag) and <c>blobs/sha256/&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// Files are written to a temporary name and renamed, so a reader sees whole blobs and a whole <c>index.json</c>. One
/// writer at a time per directory: two concurrent writers can lose each other's <c>index.json</c> entries. The
/// artifact is byte-identical to what <see cref="WasmArtifact.PushWasmAsync"/> pushes for the same input, and
/// <see cref="PushAsync"/> copies it to a registry with the same digest.
/// </remarks>
public static class OciImageLayout
{
    /// <summary>The layout marker file.</summary>
    public const string LayoutFileName = "oci-layout";

    /// <summary>The index file.</summary>
    public const string IndexFileName = "index.json";

    /// <summary>The layout version written and accepted.</summary>
    public const string LayoutVersion = "1.0.0";

    private const int MaxIndexBytes = 16 * 1024 * 1024;
    private const int MaxManifestBytes = 4 * 1024 * 1024;

    /// <summary>Writes <paramref name="wasm"/> as a Wasm artifact under <paramref name="tag"/>, replacing an earlier entry with that tag.</summary>
    /// <param name="directory">The layout directory (created if missing).</param>
    /// <param name="tag">The reference name recorded in <c>index.json</c>.</param>
    /// <param name="wasm">A WebAssembly module or component.</param>
    /// <param name="annotations">Manifest annotations, as for <see cref="WasmArtifact.PushWasmAsync"/>.</param>
    /// <param name="timeProvider">The clock for the default <c>created</c> annotation.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>The manifest digest.</returns>
    public static async Task<string> WriteWasmAsync(string directory, string tag, ReadOnlyMemory<byte> wasm, IReadOnlyDictionary<string, string>? annotations = null, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(tag);
        if (!OciReference.IsValidTag(tag))
        {
            throw new ArgumentException($"'{tag}' is not a valid tag; a tag is 1 to 128 characters from [A-Za-z0-9_.-] and cannot start with '.' or '-'.", nameof(tag));
        }

        WasmArtifact.WasmPackage package = WasmArtifact.Package(wasm.Span, annotations, timeProvider ?? TimeProvider.System, $"{directory}:{tag}");
        string root = Path.GetFullPath(directory);
        Directory.CreateDirectory(Path.Combine(root, "blobs", "sha256"));
        await EnsureLayoutFileAsync(root, cancellationToken).ConfigureAwait(false);
        await WriteBlobAsync(root, package.ConfigDigest, package.Config, cancellationToken).ConfigureAwait(false);
        await WriteBlobAsync(root, package.LayerDigest, wasm, cancellationToken).ConfigureAwait(false);
        await WriteBlobAsync(root, package.ManifestDigest, package.Manifest, cancellationToken).ConfigureAwait(false);

        List<OciDescriptor> entries = File.Exists(Path.Combine(root, IndexFileName))
            ? (await ReadIndexAsync(root, cancellationToken).ConfigureAwait(false)).ToList()
            : [];
        entries.RemoveAll(e => e.Annotations.TryGetValue(OciAnnotations.RefName, out string? name) && name == tag);
        entries.Add(new OciDescriptor(OciMediaTypes.ImageManifest, package.ManifestDigest, package.Manifest.Length)
        {
            ArtifactType = OciMediaTypes.WasmConfig,
            Annotations = new Dictionary<string, string> { [OciAnnotations.RefName] = tag },
        });
        await WriteAtomicallyAsync(Path.Combine(root, IndexFileName), IndexJson(entries), cancellationToken).ConfigureAwait(false);
        return package.ManifestDigest;
    }

    /// <summary>Reads the Wasm artifact tagged <paramref name="tag"/>, verifying every blob against its digest.</summary>
    /// <param name="directory">The layout directory.</param>
    /// <param name="tag">The reference name in <c>index.json</c>.</param>
    /// <param name="maxBytes">The largest Wasm layer accepted.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="OciNotFoundException">No entry has that tag, or a blob file is missing.</exception>
    /// <exception cref="OciDigestMismatchException">A blob file does not hash to its digest (the layout is damaged).</exception>
    /// <exception cref="OciInvalidArtifactException">Not an OCI layout, or the entry is not a Wasm artifact.</exception>
    public static async Task<WasmArtifactContent> ReadWasmAsync(string directory, string tag, long maxBytes = WasmArtifact.DefaultMaxBytes, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(tag);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxBytes, (long)Array.MaxLength);
        string root = Path.GetFullPath(directory);
        string name = $"{root}:{tag}";
        (OciImageManifest manifest, string manifestDigest) = await ReadManifestAsync(root, tag, cancellationToken).ConfigureAwait(false);
        (OciDescriptor configDescriptor, OciDescriptor layer) = WasmArtifact.Validate(manifest, name, maxBytes);
        byte[] config = await ReadBlobAsync(root, configDescriptor.Digest, WasmArtifact.MaxConfigBytes, cancellationToken).ConfigureAwait(false);
        WasmArtifact.CheckConfig(config, name);
        byte[] wasm = await ReadBlobAsync(root, layer.Digest, maxBytes, cancellationToken).ConfigureAwait(false);
        WasmArtifact.CheckLayer(wasm, layer, name);
        return new WasmArtifactContent(manifestDigest, config, wasm) { Manifest = manifest };
    }

    /// <summary>The tags recorded in a layout's <c>index.json</c>.</summary>
    public static async Task<IReadOnlyList<string>> ListTagsAsync(string directory, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        string root = Path.GetFullPath(directory);
        CheckLayoutFile(root);
        IReadOnlyList<OciDescriptor> entries = await ReadIndexAsync(root, cancellationToken).ConfigureAwait(false);
        return entries.Select(e => e.Annotations.GetValueOrDefault(OciAnnotations.RefName)).OfType<string>().ToList();
    }

    /// <summary>
    /// Pushes the artifact tagged <paramref name="tag"/> in a layout to a registry, byte for byte (the manifest digest is
    /// preserved). Every blob is verified before it is sent.
    /// </summary>
    /// <returns>The manifest digest.</returns>
    public static async Task<string> PushAsync(this OciRegistryClient client, string directory, string tag, OciReference target, IProgress<OciTransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(tag);
        string root = Path.GetFullPath(directory);
        (OciImageManifest manifest, string manifestDigest) = await ReadManifestAsync(root, tag, cancellationToken).ConfigureAwait(false);
        byte[] manifestBytes = await ReadBlobAsync(root, manifestDigest, MaxManifestBytes, cancellationToken).ConfigureAwait(false);
        OciRepository repository = target.RepositoryReference;
        foreach (OciDescriptor blob in manifest.Layers.Prepend(manifest.Config))
        {
            byte[] bytes = await ReadBlobAsync(root, blob.Digest, Array.MaxLength, cancellationToken).ConfigureAwait(false);
            await client.PushBlobAsync(repository, bytes, blob.Digest, blob.MediaType == OciMediaTypes.WasmLayer ? progress : null, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        return await client.PutManifestAsync(target, manifestBytes, manifest.MediaType ?? OciMediaTypes.ImageManifest, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<(OciImageManifest Manifest, string Digest)> ReadManifestAsync(string root, string tag, CancellationToken cancellationToken)
    {
        CheckLayoutFile(root);
        IReadOnlyList<OciDescriptor> entries = await ReadIndexAsync(root, cancellationToken).ConfigureAwait(false);
        OciDescriptor? entry = entries.LastOrDefault(e => e.Annotations.TryGetValue(OciAnnotations.RefName, out string? n) && n == tag);
        if (entry is null)
        {
            string known = string.Join(", ", entries.Select(e => e.Annotations.GetValueOrDefault(OciAnnotations.RefName)).OfType<string>());
            throw new OciNotFoundException($"Tag {tag} not found in the OCI layout {root} (tags: {(known.Length == 0 ? "none" : known)}).", null);
        }

        if (entry.Size > MaxManifestBytes)
        {
            throw new OciSizeLimitException($"The manifest of {root}:{tag} is {entry.Size} bytes, more than the limit of {MaxManifestBytes} bytes.", MaxManifestBytes, entry.Size);
        }

        byte[] bytes = await ReadBlobAsync(root, entry.Digest, MaxManifestBytes, cancellationToken).ConfigureAwait(false);
        return (OciImageManifest.Parse(bytes, $"{root}:{tag}"), entry.Digest);
    }

    private static void CheckLayoutFile(string root)
    {
        string path = Path.Combine(root, LayoutFileName);
        if (!File.Exists(path))
        {
            throw new OciInvalidArtifactException($"'{root}' is not an OCI image layout: it has no '{LayoutFileName}' file.");
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            string? version = document.RootElement.ValueKind == JsonValueKind.Object &&
                document.RootElement.TryGetProperty("imageLayoutVersion", out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            if (version != LayoutVersion)
            {
                throw new OciInvalidArtifactException($"The OCI image layout '{root}' has imageLayoutVersion '{version}'; only '{LayoutVersion}' is supported.");
            }
        }
        catch (JsonException ex)
        {
            throw new OciInvalidArtifactException($"'{path}' is not valid JSON: {ex.Message}", innerException: ex);
        }
    }

    private static async Task EnsureLayoutFileAsync(string root, CancellationToken cancellationToken)
    {
        if (File.Exists(Path.Combine(root, LayoutFileName)))
        {
            CheckLayoutFile(root);
            return;
        }

        await WriteAtomicallyAsync(Path.Combine(root, LayoutFileName), """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    private static async Task<IReadOnlyList<OciDescriptor>> ReadIndexAsync(string root, CancellationToken cancellationToken)
    {
        string path = Path.Combine(root, IndexFileName);
        if (!File.Exists(path))
        {
            throw new OciInvalidArtifactException($"The OCI image layout '{root}' has no '{IndexFileName}'.");
        }

        if (new FileInfo(path).Length > MaxIndexBytes)
        {
            throw new OciSizeLimitException($"'{path}' is larger than {MaxIndexBytes} bytes.", MaxIndexBytes, new FileInfo(path).Length);
        }

        byte[] bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        try
        {
            using JsonDocument document = JsonDocument.Parse(bytes);
            JsonElement index = document.RootElement;
            if (index.ValueKind != JsonValueKind.Object || !index.TryGetProperty("manifests", out JsonElement manifests) || manifests.ValueKind != JsonValueKind.Array)
            {
                throw new OciInvalidArtifactException($"'{path}' is not an image index: it has no 'manifests' array.");
            }

            var result = new List<OciDescriptor>();
            int i = 0;
            foreach (JsonElement element in manifests.EnumerateArray())
            {
                result.Add(OciDescriptor.Read(element, $"entry {i++} of '{path}'"));
            }

            return result;
        }
        catch (JsonException ex)
        {
            throw new OciInvalidArtifactException($"'{path}' is not valid JSON: {ex.Message}", innerException: ex);
        }
    }

    private static byte[] IndexJson(IReadOnlyList<OciDescriptor> entries)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("schemaVersion", 2);
            writer.WriteString("mediaType", OciMediaTypes.ImageIndex);
            writer.WriteStartArray("manifests");
            foreach (OciDescriptor entry in entries)
            {
                entry.WriteTo(writer);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static string BlobPath(string root, string digest) => Path.Combine(root, "blobs", "sha256", OciDigest.Hex(digest));

    private static async Task WriteBlobAsync(string root, string digest, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        string path = BlobPath(root, digest);
        if (File.Exists(path) && new FileInfo(path).Length == content.Length)
        {
            // Content-addressed: an intact existing file is the same content. Rewrite a damaged one.
            byte[] existing = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            if (OciDigest.Compute(existing) == digest)
            {
                return;
            }
        }

        await WriteAtomicallyAsync(path, content, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadBlobAsync(string root, string digest, long maxBytes, CancellationToken cancellationToken)
    {
        string path = BlobPath(root, digest);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new OciNotFoundException($"Blob {digest} is missing from the OCI layout {root} (expected at '{path}').", null);
        }

        if (info.Length > maxBytes)
        {
            throw new OciSizeLimitException($"Blob {digest} in the OCI layout {root} is {info.Length} bytes, more than the limit of {maxBytes} bytes.", maxBytes, info.Length);
        }

        byte[] bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        string actual = OciDigest.FromHash(SHA256.HashData(bytes));
        if (actual != digest)
        {
            throw new OciDigestMismatchException($"Blob {digest} in the OCI layout {root} is damaged: '{path}' hashes to {actual}. Nothing was returned.", digest, actual);
        }

        return bytes;
    }

    private static async Task WriteAtomicallyAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        string temp = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
                // best effort
            }

            throw;
        }
    }
}
