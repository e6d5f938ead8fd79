namespace WarpGrid.Core.Oci;

/// <summary>Media types of the OCI image and distribution specifications and of the CNCF Wasm artifact layout.</summary>
public static class OciMediaTypes
{
    /// <summary>An OCI image manifest.</summary>
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";

    /// <summary>An OCI image index.</summary>
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";

    /// <summary>A Docker image manifest, schema 2.</summary>
    public const string DockerManifestV2 = "application/vnd.docker.distribution.manifest.v2+json";

    /// <summary>A Docker manifest list.</summary>
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>An OCI image configuration (a container image, not a Wasm artifact).</summary>
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";

    /// <summary>The empty descriptor's media type (OCI 1.1): a config blob <c>{}</c> for artifacts that need no config.</summary>
    public const string EmptyJson = "application/vnd.oci.empty.v1+json";

    /// <summary>The config of a CNCF Wasm artifact.</summary>
    public const string WasmConfig = "application/vnd.wasm.config.v0+json";

    /// <summary>The layer of a CNCF Wasm artifact: the module or component bytes.</summary>
    public const string WasmLayer = "application/wasm";

    /// <summary>The <c>Accept</c> header values sent for every manifest request.</summary>
    public static IReadOnlyList<string> ManifestAccept { get; } = [ImageManifest, ImageIndex, DockerManifestV2, DockerManifestList];
}

/// <summary>Annotation keys of the OCI image specification.</summary>
public static class OciAnnotations
{
    /// <summary>Date and time the artifact was built (RFC 3339).</summary>
    public const string Created = "org.opencontainers.image.created";

    /// <summary>Human-readable title (for a layer: its file name).</summary>
    public const string Title = "org.opencontainers.image.title";

    /// <summary>Version of the packaged software.</summary>
    public const string Version = "org.opencontainers.image.version";

    /// <summary>Human-readable description.</summary>
    public const string Description = "org.opencontainers.image.description";

    /// <summary>URL of the source code.</summary>
    public const string Source = "org.opencontainers.image.source";

    /// <summary>Contact details of the authors.</summary>
    public const string Authors = "org.opencontainers.image.authors";

    /// <summary>The name of a reference in an OCI image layout's <c>index.json</c> (the tag).</summary>
    public const string RefName = "org.opencontainers.image.ref.name";
}
