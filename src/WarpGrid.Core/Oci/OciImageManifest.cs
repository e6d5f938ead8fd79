using System.Text.Json;

namespace WarpGrid.Core.Oci;

/// <summary>An OCI content descriptor: what a manifest says about a blob it references.</summary>
/// <param name="MediaType">The media type of the referenced content.</param>
/// <param name="Digest">Its sha256 digest.</param>
/// <param name="Size">Its size in bytes.</param>
public sealed record OciDescriptor(string MediaType, string Digest, long Size)
{
    /// <summary>The descriptor's annotations (empty when it has none).</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>The <c>artifactType</c> field, if any (set on manifest descriptors in an index).</summary>
    public string? ArtifactType { get; init; }

    internal void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("mediaType", MediaType);
        writer.WriteString("digest", Digest);
        writer.WriteNumber("size", Size);
        if (ArtifactType is not null)
        {
            writer.WriteString("artifactType", ArtifactType);
        }

        OciImageManifest.WriteAnnotations(writer, Annotations);
        writer.WriteEndObject();
    }

    internal static OciDescriptor Read(JsonElement element, string where)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new OciInvalidArtifactException($"{where} is not a JSON object.");
        }

        string mediaType = OciImageManifest.RequiredString(element, "mediaType", where);
        string digest = OciImageManifest.RequiredString(element, "digest", where);
        if (OciDigest.Problem(digest) is { } problem)
        {
            throw new OciInvalidArtifactException($"{where}: {problem}.");
        }

        if (!element.TryGetProperty("size", out JsonElement sizeElement) || sizeElement.ValueKind != JsonValueKind.Number ||
            !sizeElement.TryGetInt64(out long size) || size < 0)
        {
            throw new OciInvalidArtifactException($"{where} has no valid 'size' (a non-negative integer).");
        }

        return new OciDescriptor(mediaType, digest, size)
        {
            Annotations = OciImageManifest.ReadAnnotations(element, where),
            ArtifactType = element.TryGetProperty("artifactType", out JsonElement at) && at.ValueKind == JsonValueKind.String ? at.GetString() : null,
        };
    }
}

/// <summary>An OCI image manifest (<c>application/vnd.oci.image.manifest.v1+json</c>), as used for Wasm artifacts.</summary>
/// <param name="Config">The config descriptor.</param>
/// <param name="Layers">The layer descriptors.</param>
public sealed record OciImageManifest(OciDescriptor Config, IReadOnlyList<OciDescriptor> Layers)
{
    /// <summary>The <c>mediaType</c> field (the OCI image manifest type when written by this library).</summary>
    public string? MediaType { get; init; } = OciMediaTypes.ImageManifest;

    /// <summary>The <c>artifactType</c> field, if any.</summary>
    public string? ArtifactType { get; init; }

    /// <summary>The manifest's annotations.</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>The <c>subject</c> field (OCI 1.1): the manifest this one refers to, for the referrers API; null when absent.</summary>
    public OciDescriptor? Subject { get; init; }

    /// <summary>Serializes the manifest: compact JSON, fields in a fixed order and annotations sorted, so the same input always gives the same digest.</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("schemaVersion", 2);
            if (MediaType is not null)
            {
                writer.WriteString("mediaType", MediaType);
            }

            if (ArtifactType is not null)
            {
                writer.WriteString("artifactType", ArtifactType);
            }

            writer.WritePropertyName("config");
            Config.WriteTo(writer);
            writer.WriteStartArray("layers");
            foreach (OciDescriptor layer in Layers)
            {
                layer.WriteTo(writer);
            }

            writer.WriteEndArray();
            if (Subject is not null)
            {
                writer.WritePropertyName("subject");
                Subject.WriteTo(writer);
            }

            WriteAnnotations(writer, Annotations);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Parses an image manifest.</summary>
    /// <param name="json">The manifest bytes.</param>
    /// <param name="name">How to name the manifest in error messages (for example the reference it came from).</param>
    /// <exception cref="OciInvalidArtifactException">The bytes are not JSON, or not an image manifest (an index, schema 1, or missing fields).</exception>
    public static OciImageManifest Parse(ReadOnlySpan<byte> json, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 32 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException ex)
        {
            throw new OciInvalidArtifactException($"The manifest of {name} is not valid JSON: {ex.Message}", innerException: ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            string where = "the manifest of " + name;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new OciInvalidArtifactException($"The manifest of {name} is not a JSON object.");
            }

            if (!root.TryGetProperty("schemaVersion", out JsonElement version) || !version.TryGetInt32(out int schemaVersion) || schemaVersion != 2)
            {
                throw new OciInvalidArtifactException($"The manifest of {name} does not have schemaVersion 2.");
            }

            string? mediaType = root.TryGetProperty("mediaType", out JsonElement mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString() : null;
            if (mediaType is OciMediaTypes.ImageIndex or OciMediaTypes.DockerManifestList || root.TryGetProperty("manifests", out _))
            {
                throw new OciInvalidArtifactException($"{name} is an image index (a list of manifests), not an image manifest.");
            }

            if (!root.TryGetProperty("config", out JsonElement config))
            {
                throw new OciInvalidArtifactException($"The manifest of {name} has no 'config'.");
            }

            if (!root.TryGetProperty("layers", out JsonElement layersElement) || layersElement.ValueKind != JsonValueKind.Array)
            {
                throw new OciInvalidArtifactException($"The manifest of {name} has no 'layers' array.");
            }

            var layers = new List<OciDescriptor>();
            int i = 0;
            foreach (JsonElement layer in layersElement.EnumerateArray())
            {
                layers.Add(OciDescriptor.Read(layer, $"layer {i++} in {where}"));
            }

            return new OciImageManifest(OciDescriptor.Read(config, "the config descriptor in " + where), layers)
            {
                MediaType = mediaType,
                ArtifactType = root.TryGetProperty("artifactType", out JsonElement at) && at.ValueKind == JsonValueKind.String ? at.GetString() : null,
                Annotations = ReadAnnotations(root, where),
                Subject = root.TryGetProperty("subject", out JsonElement subject) && subject.ValueKind != JsonValueKind.Null
                    ? OciDescriptor.Read(subject, "the subject descriptor in " + where)
                    : null,
            };
        }
    }

    internal static void WriteAnnotations(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> annotations)
    {
        if (annotations.Count == 0)
        {
            return;
        }

        writer.WriteStartObject("annotations");
        foreach (KeyValuePair<string, string> entry in annotations.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            writer.WriteString(entry.Key, entry.Value);
        }

        writer.WriteEndObject();
    }

    internal static IReadOnlyDictionary<string, string> ReadAnnotations(JsonElement element, string where)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!element.TryGetProperty("annotations", out JsonElement annotations) || annotations.ValueKind == JsonValueKind.Null)
        {
            return result;
        }

        if (annotations.ValueKind != JsonValueKind.Object)
        {
            throw new OciInvalidArtifactException($"The annotations of {where} are not a JSON object.");
        }

        foreach (JsonProperty property in annotations.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.String)
            {
                throw new OciInvalidArtifactException($"Annotation '{property.Name}' of {where} is not a string.");
            }

            result[property.Name] = property.Value.GetString()!;
        }

        return result;
    }

    internal static string RequiredString(JsonElement element, string property, string where)
    {
        if (!element.TryGetProperty(property, out JsonElement value) || value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(value.GetString()))
        {
            throw new OciInvalidArtifactException($"{Capitalize(where)} has no '{property}' string.");
        }

        return value.GetString()!;
    }

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];
}

/// <summary>An OCI image index (<c>application/vnd.oci.image.index.v1+json</c>): a list of manifest descriptors, as served by the referrers API.</summary>
/// <param name="Manifests">The manifest descriptors, each with its <c>artifactType</c> and annotations when the index carries them.</param>
public sealed record OciImageIndex(IReadOnlyList<OciDescriptor> Manifests)
{
    /// <summary>The <c>mediaType</c> field (the OCI image index type when written by this library).</summary>
    public string? MediaType { get; init; } = OciMediaTypes.ImageIndex;

    /// <summary>The index's annotations.</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    /// <summary>Serializes the index: compact JSON, fields in a fixed order and annotations sorted.</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("schemaVersion", 2);
            if (MediaType is not null)
            {
                writer.WriteString("mediaType", MediaType);
            }

            writer.WriteStartArray("manifests");
            foreach (OciDescriptor manifest in Manifests)
            {
                manifest.WriteTo(writer);
            }

            writer.WriteEndArray();
            OciImageManifest.WriteAnnotations(writer, Annotations);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Parses an image index.</summary>
    /// <param name="json">The index bytes.</param>
    /// <param name="name">How to name the index in error messages.</param>
    /// <exception cref="OciInvalidArtifactException">The bytes are not JSON, or not an image index (no <c>manifests</c> array).</exception>
    public static OciImageIndex Parse(ReadOnlySpan<byte> json, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 32 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException ex)
        {
            throw new OciInvalidArtifactException($"The index {name} is not valid JSON: {ex.Message}", innerException: ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            string where = "the index " + name;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("manifests", out JsonElement manifests) || manifests.ValueKind != JsonValueKind.Array)
            {
                throw new OciInvalidArtifactException($"{name} is not an image index: it has no 'manifests' array.");
            }

            var result = new List<OciDescriptor>();
            int i = 0;
            foreach (JsonElement element in manifests.EnumerateArray())
            {
                result.Add(OciDescriptor.Read(element, $"entry {i++} of {where}"));
            }

            return new OciImageIndex(result)
            {
                MediaType = root.TryGetProperty("mediaType", out JsonElement mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString() : null,
                Annotations = OciImageManifest.ReadAnnotations(root, where),
            };
        }
    }
}
