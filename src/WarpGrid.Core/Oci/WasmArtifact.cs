using System.Globalization;
using System.Text.Json;

namespace WarpGrid.Core.Oci;

/// <summary>A Wasm artifact as pulled or read: the manifest digest, the config JSON and the verified module or component bytes.</summary>
/// <param name="ManifestDigest">The digest of the artifact's manifest (pin deployments to it).</param>
/// <param name="ConfigJson">The config blob (<c>application/vnd.wasm.config.v0+json</c>), as stored.</param>
/// <param name="Wasm">The layer: a WebAssembly module or component, verified against its digest.</param>
public sealed record WasmArtifactContent(string ManifestDigest, byte[] ConfigJson, byte[] Wasm)
{
    /// <summary>The parsed manifest.</summary>
    public required OciImageManifest Manifest { get; init; }

    /// <summary>The manifest's annotations (<c>org.opencontainers.image.*</c>).</summary>
    public IReadOnlyDictionary<string, string> Annotations => Manifest.Annotations;

    /// <summary>True when <see cref="Wasm"/> is a component (WASI 0.2) rather than a core module.</summary>
    public bool IsComponent => WasmArtifact.IsComponent(Wasm);
}

/// <summary>
/// The CNCF Wasm OCI artifact layout: a config blob <c>application/vnd.wasm.config.v0+json</c>
/// (<c>{"created","author","architecture":"wasm","os":"wasip1"|"wasip2","layerDigests":[…]}</c>), exactly one layer
/// <c>application/wasm</c>, and an OCI image manifest with <c>artifactType</c> set to the config media type and
/// <c>org.opencontainers.image.*</c> annotations. Push and pull over <see cref="OciRegistryClient"/>; see
/// <see cref="OciImageLayout"/> for the same artifact on disk.
/// </summary>
public static class WasmArtifact
{
    /// <summary>The default limit on the Wasm layer's size when pulling (256 MiB).</summary>
    public const long DefaultMaxBytes = 256L * 1024 * 1024;

    /// <summary>The largest config blob accepted (1 MiB).</summary>
    public const int MaxConfigBytes = 1024 * 1024;

    /// <summary>The layer title used when the annotations give none.</summary>
    public const string DefaultLayerTitle = "module.wasm";

    /// <summary>True when <paramref name="bytes"/> start with the WebAssembly magic <c>\0asm</c>.</summary>
    public static bool IsWasm(ReadOnlySpan<byte> bytes) => bytes.StartsWith("\0asm"u8);

    /// <summary>True when <paramref name="bytes"/> are a component (magic, then version 0x0d and layer 1) rather than a core module (version 1, layer 0).</summary>
    public static bool IsComponent(ReadOnlySpan<byte> bytes) => bytes.Length >= 8 && IsWasm(bytes) && bytes[6] == 1 && bytes[7] == 0;

    /// <summary>
    /// Pushes <paramref name="wasm"/> as a Wasm artifact: config blob, layer blob (chunked when large), then the manifest
    /// to the reference's tag. Blobs the repository already has are not uploaded again.
    /// </summary>
    /// <param name="client">The registry client.</param>
    /// <param name="reference">Where to push (<c>host/repo:tag</c>).</param>
    /// <param name="wasm">A WebAssembly module or component.</param>
    /// <param name="annotations">
    /// Manifest annotations, typically <see cref="OciAnnotations.Version"/>, <see cref="OciAnnotations.Description"/>,
    /// <see cref="OciAnnotations.Source"/>, <see cref="OciAnnotations.Title"/> (also the layer's file name) and
    /// <see cref="OciAnnotations.Authors"/> (also the config's author). <see cref="OciAnnotations.Created"/> defaults to
    /// now; give it to make the manifest digest reproducible.
    /// </param>
    /// <param name="progress">Receives the layer upload's progress.</param>
    /// <param name="cancellationToken">Cancels the push.</param>
    /// <returns>The manifest digest.</returns>
    /// <exception cref="ArgumentException"><paramref name="wasm"/> is not WebAssembly, or an annotation is malformed.</exception>
    public static async Task<string> PushWasmAsync(this OciRegistryClient client, OciReference reference, ReadOnlyMemory<byte> wasm, IReadOnlyDictionary<string, string>? annotations = null, IProgress<OciTransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(reference);
        WasmPackage package = Package(wasm.Span, annotations, client.TimeProvider, reference.ToString());
        OciRepository repository = reference.RepositoryReference;
        await client.PushBlobAsync(repository, package.Config, package.ConfigDigest, cancellationToken: cancellationToken).ConfigureAwait(false);
        await client.PushBlobAsync(repository, wasm, package.LayerDigest, progress, cancellationToken: cancellationToken).ConfigureAwait(false);
        return await client.PutManifestAsync(reference, package.Manifest, OciMediaTypes.ImageManifest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Pulls a Wasm artifact: resolves the reference, fetches the manifest by digest, checks it is a Wasm artifact (config
    /// media type, exactly one <c>application/wasm</c> layer, sizes within limits), pulls and verifies config and layer,
    /// and checks the layer is WebAssembly.
    /// </summary>
    /// <param name="client">The registry client.</param>
    /// <param name="reference">The artifact, by tag or digest.</param>
    /// <param name="maxBytes">The largest layer accepted; a larger one is refused before it is downloaded.</param>
    /// <param name="progress">Receives the layer download's progress.</param>
    /// <param name="cancellationToken">Cancels the pull.</param>
    /// <exception cref="OciInvalidArtifactException">Not a Wasm artifact, or the layer is not WebAssembly.</exception>
    /// <exception cref="OciSizeLimitException">The layer is larger than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="OciDigestMismatchException">A manifest or blob does not match its digest.</exception>
    public static async Task<WasmArtifactContent> PullWasmAsync(this OciRegistryClient client, OciReference reference, long maxBytes = DefaultMaxBytes, IProgress<OciTransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxBytes, (long)Array.MaxLength);
        string name = reference.ToString();
        string manifestDigest = reference.Digest ?? await client.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
        OciManifestResult fetched = await client.GetManifestAsync(reference.WithDigest(manifestDigest), cancellationToken).ConfigureAwait(false);
        if (fetched.MediaType is OciMediaTypes.ImageIndex or OciMediaTypes.DockerManifestList)
        {
            throw new OciInvalidArtifactException($"Artifact {name} is not a Wasm artifact: it is an image index ({fetched.MediaType}), not a single manifest.", reference.Registry);
        }

        OciImageManifest manifest = OciImageManifest.Parse(fetched.Content, name);
        (OciDescriptor configDescriptor, OciDescriptor layer) = Validate(manifest, name, maxBytes);
        OciRepository repository = reference.RepositoryReference;
        byte[] config = await client.PullBlobBytesCoreAsync(repository, configDescriptor.Digest, MaxConfigBytes, configDescriptor.Size, null, cancellationToken).ConfigureAwait(false);
        CheckConfig(config, name);
        byte[] wasm = await client.PullBlobBytesCoreAsync(repository, layer.Digest, maxBytes, layer.Size, progress, cancellationToken).ConfigureAwait(false);
        CheckLayer(wasm, layer, name);
        return new WasmArtifactContent(manifestDigest, config, wasm) { Manifest = manifest };
    }

    internal sealed record WasmPackage(byte[] Config, string ConfigDigest, string LayerDigest, long LayerSize, byte[] Manifest, string ManifestDigest);

    /// <summary>Builds config and manifest for <paramref name="wasm"/> (deterministic for the same bytes and annotations).</summary>
    internal static WasmPackage Package(ReadOnlySpan<byte> wasm, IReadOnlyDictionary<string, string>? annotations, TimeProvider timeProvider, string name)
    {
        if (!IsWasm(wasm))
        {
            throw new ArgumentException($"The content to package as {name} is not WebAssembly: it starts with {Prefix(wasm)}, not the wasm magic 00 61 73 6d ('\\0asm').", nameof(wasm));
        }

        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> entry in annotations ?? new Dictionary<string, string>())
        {
            if (string.IsNullOrWhiteSpace(entry.Key) || entry.Value is null)
            {
                throw new ArgumentException($"Annotation '{entry.Key}' for {name} must have a non-empty key and a value.", nameof(annotations));
            }

            all[entry.Key] = entry.Value;
        }

        if (all.TryGetValue(OciAnnotations.Created, out string? created))
        {
            if (!DateTimeOffset.TryParse(created, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _))
            {
                throw new ArgumentException($"Annotation {OciAnnotations.Created} for {name} is '{created}', not an RFC 3339 date and time.", nameof(annotations));
            }
        }
        else
        {
            created = timeProvider.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            all[OciAnnotations.Created] = created;
        }

        string layerDigest = OciDigest.Compute(wasm);
        byte[] config;
        using (var buffer = new MemoryStream())
        {
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("created", created);
                if (all.TryGetValue(OciAnnotations.Authors, out string? author))
                {
                    writer.WriteString("author", author);
                }

                writer.WriteString("architecture", "wasm");
                writer.WriteString("os", IsComponent(wasm) ? "wasip2" : "wasip1");
                writer.WriteStartArray("layerDigests");
                writer.WriteStringValue(layerDigest);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            config = buffer.ToArray();
        }

        string configDigest = OciDigest.Compute(config);
        string title = all.GetValueOrDefault(OciAnnotations.Title) ?? DefaultLayerTitle;
        var manifest = new OciImageManifest(
            new OciDescriptor(OciMediaTypes.WasmConfig, configDigest, config.Length),
            [new OciDescriptor(OciMediaTypes.WasmLayer, layerDigest, wasm.Length) { Annotations = new Dictionary<string, string> { [OciAnnotations.Title] = title } }])
        {
            ArtifactType = OciMediaTypes.WasmConfig,
            Annotations = all,
        };

        byte[] manifestBytes = manifest.ToJson();
        return new WasmPackage(config, configDigest, layerDigest, wasm.Length, manifestBytes, OciDigest.Compute(manifestBytes));
    }

    /// <summary>Checks that a manifest describes a Wasm artifact within the limits; returns its config and wasm layer.</summary>
    internal static (OciDescriptor Config, OciDescriptor Layer) Validate(OciImageManifest manifest, string name, long maxBytes)
    {
        var wasmLayers = manifest.Layers.Where(l => l.MediaType == OciMediaTypes.WasmLayer).ToList();
        bool configOk = manifest.Config.MediaType == OciMediaTypes.WasmConfig;
        if (!configOk || wasmLayers.Count != 1)
        {
            string layers = manifest.Layers.Count == 0 ? "none" : string.Join(", ", manifest.Layers.Select(l => l.MediaType));
            throw new OciInvalidArtifactException(
                $"Artifact {name} is not a Wasm artifact: config media type '{manifest.Config.MediaType}'" +
                (configOk ? "" : $" (expected '{OciMediaTypes.WasmConfig}')") +
                $" / layers [{layers}] (expected exactly one '{OciMediaTypes.WasmLayer}').");
        }

        OciDescriptor layer = wasmLayers[0];
        if (layer.Size > maxBytes)
        {
            throw new OciSizeLimitException($"The Wasm layer of {name} is {layer.Size} bytes, more than the limit of {maxBytes} bytes; it was not downloaded.", maxBytes, layer.Size);
        }

        if (manifest.Config.Size > MaxConfigBytes)
        {
            throw new OciSizeLimitException($"The config of {name} is {manifest.Config.Size} bytes, more than the limit of {MaxConfigBytes} bytes.", MaxConfigBytes, manifest.Config.Size);
        }

        return (manifest.Config, layer);
    }

    internal static void CheckConfig(byte[] config, string name)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(config);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new OciInvalidArtifactException($"The config of {name} is not a JSON object.");
            }
        }
        catch (JsonException ex)
        {
            throw new OciInvalidArtifactException($"The config of {name} is not valid JSON: {ex.Message}", innerException: ex);
        }
    }

    internal static void CheckLayer(byte[] wasm, OciDescriptor layer, string name)
    {
        if (wasm.Length != layer.Size)
        {
            throw new OciInvalidArtifactException($"The Wasm layer of {name} is {wasm.Length} bytes, but the manifest says {layer.Size}.");
        }

        if (!IsWasm(wasm))
        {
            throw new OciInvalidArtifactException($"Artifact {name} is not wasm: its layer {layer.Digest} starts with {Prefix(wasm)}, not the WebAssembly magic 00 61 73 6d ('\\0asm').");
        }
    }

    private static string Prefix(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0)
        {
            return "nothing (it is empty)";
        }

        var parts = new string[Math.Min(4, bytes.Length)];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = bytes[i].ToString("x2", CultureInfo.InvariantCulture);
        }

        return string.Join(' ', parts);
    }
}
