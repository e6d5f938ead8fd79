namespace WarpGrid.Core.Manifest;

/// <summary>
/// The typed, validated content of a <c>warp.toml</c> manifest.
/// </summary>
/// <remarks>
/// Instances are produced by <see cref="ManifestParser"/> (every absent field holds its documented default)
/// and can be written back with <see cref="ManifestWriter.ToToml(WarpManifest)"/>.
/// Equality compares the manifest content only: <see cref="SourcePath"/> is provenance and is ignored.
/// </remarks>
public sealed record WarpManifest
{
    /// <summary>The <c>[package]</c> section (always present: <c>package.name</c> is required).</summary>
    public required PackageSection Package { get; init; }

    /// <summary>The <c>[build]</c> section, with defaults when absent.</summary>
    public required BuildSection Build { get; init; }

    /// <summary>The <c>[runtime]</c> section, with defaults when absent.</summary>
    public required RuntimeSection Runtime { get; init; }

    /// <summary>The <c>[capabilities]</c> section; by default nothing is granted except logging.</summary>
    public CapabilitiesSection Capabilities { get; init; } = new();

    /// <summary>The <c>[health]</c> section, or <see langword="null"/> when the manifest declares no health check.</summary>
    public HealthSection? Health { get; init; }

    /// <summary>The <c>[placement]</c> section (scheduler constraints in a cluster); empty by default.</summary>
    public PlacementSection Placement { get; init; } = new();

    /// <summary>The path the manifest was read from, when known. Not part of equality.</summary>
    public string? SourcePath { get; init; }

    /// <summary>
    /// Creates a manifest holding every default for a package named <paramref name="name"/>
    /// (route <c>/&lt;name&gt;</c>, output <c>&lt;name&gt;.wasm</c>).
    /// </summary>
    /// <param name="name">The package name: a DNS label (<c>^[a-z0-9]([-a-z0-9]*[a-z0-9])?$</c>, at most 63 characters).</param>
    /// <returns>A manifest equal to the one parsed from a file containing only <c>[package] name = "&lt;name&gt;"</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid DNS label.</exception>
    public static WarpManifest CreateDefault(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!ManifestRules.IsValidName(name))
        {
            throw new ArgumentException(ManifestRules.DescribeInvalidName(name), nameof(name));
        }

        return new WarpManifest
        {
            Package = new PackageSection { Name = name },
            Build = new BuildSection { Output = BuildSection.DefaultOutputFor(name) },
            Runtime = new RuntimeSection { Route = RuntimeSection.DefaultRouteFor(name) },
        };
    }

    /// <summary>Compares the manifest content; <see cref="SourcePath"/> is ignored.</summary>
    /// <param name="other">The manifest to compare with.</param>
    /// <returns><see langword="true"/> when every section is equal.</returns>
    public bool Equals(WarpManifest? other) =>
        other is not null
        && Package.Equals(other.Package)
        && Build.Equals(other.Build)
        && Runtime.Equals(other.Runtime)
        && Capabilities.Equals(other.Capabilities)
        && Equals(Health, other.Health)
        && Placement.Equals(other.Placement);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Package, Build, Runtime, Capabilities, Health, Placement);
}
