using System.Text.Json;
using System.Text.Json.Serialization;

namespace WarpGrid.Core.Deployments;

/// <summary>
/// The desired state of one deployment as kept in the cluster store under <c>deployments/&lt;name&gt;</c>:
/// the manifest text exactly as submitted and the digest of the module bytes (kept in the blob store).
/// </summary>
public sealed record DeploymentRecord
{
    /// <summary>The store key prefix of deployment records.</summary>
    public const string KeyPrefix = "deployments/";

    /// <summary>The deployment name (the manifest's package name).</summary>
    public required string Name { get; init; }

    /// <summary>The namespace it belongs to (the manifest's <c>[package] namespace</c>).</summary>
    public string Namespace { get; init; } = WarpGrid.Core.Manifest.PackageSection.DefaultNamespace;

    /// <summary>The module's size in bytes (0 in records written before sizes were kept).</summary>
    public long ModuleBytes { get; init; }

    /// <summary>The manifest's package version.</summary>
    public required string Version { get; init; }

    /// <summary>The <c>warp.toml</c> text.</summary>
    public required string Manifest { get; init; }

    /// <summary>The module's content digest, <c>sha256:&lt;hex&gt;</c>.</summary>
    public required string Digest { get; init; }

    /// <summary>The OCI reference the module was pulled from, as given (e.g. <c>registry:5000/hello:1.0</c>), if any.</summary>
    public string? Reference { get; init; }

    /// <summary>The manifest digest the reference resolved to when it was deployed, if pulled from a registry.</summary>
    public string? ManifestDigest { get; init; }

    /// <summary>How many times this deployment was created or changed (1 on create).</summary>
    public long Generation { get; init; } = 1;

    /// <summary>When it was first created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it last changed.</summary>
    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>The store revision of this record (not serialized; filled when read).</summary>
    [JsonIgnore]
    public long Revision { get; init; }

    /// <summary>The store key of a deployment.</summary>
    public static string KeyFor(string name) => KeyPrefix + name;

    /// <summary>Serializes the record for the store.</summary>
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, RecordJson.Default.DeploymentRecord);

    /// <summary>Reads a record from the store.</summary>
    public static DeploymentRecord FromBytes(ReadOnlySpan<byte> bytes, long revision)
    {
        var record = JsonSerializer.Deserialize(bytes, RecordJson.Default.DeploymentRecord)
            ?? throw new InvalidDataException("the stored deployment record is empty");
        return record with { Revision = revision };
    }
}

[JsonSerializable(typeof(DeploymentRecord))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class RecordJson : JsonSerializerContext;
