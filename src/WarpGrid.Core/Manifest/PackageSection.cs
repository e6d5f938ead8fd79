using System.Collections.Immutable;

namespace WarpGrid.Core.Manifest;

/// <summary>The <c>[package]</c> section: identity of the workload.</summary>
public sealed record PackageSection
{
    /// <summary>Default of <see cref="Version"/>.</summary>
    public const string DefaultVersion = "0.1.0";

    /// <summary>Longest allowed <see cref="Name"/>.</summary>
    public const int MaxNameLength = 63;

    private readonly ImmutableArray<string> _authors = [];
    private readonly ImmutableSortedDictionary<string, string> _labels = ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);

    /// <summary>The package name, a DNS label: <c>^[a-z0-9]([-a-z0-9]*[a-z0-9])?$</c>, at most 63 characters. Required.</summary>
    public required string Name { get; init; }

    /// <summary>The namespace that owns the deployment (a DNS label); <c>default</c> when unnamed.</summary>
    public string Namespace { get; init; } = DefaultNamespace;

    /// <summary>Default of <see cref="Namespace"/>.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>A semantic version <c>MAJOR.MINOR.PATCH[-pre][+build]</c>; default <c>0.1.0</c>.</summary>
    public string Version { get; init; } = DefaultVersion;

    /// <summary>Free-form description, or <see langword="null"/>.</summary>
    public string? Description { get; init; }

    /// <summary>Authors, e.g. <c>"Ada &lt;ada@example.com&gt;"</c>; empty by default.</summary>
    public IReadOnlyList<string> Authors
    {
        get => _authors;
        init => _authors = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    /// <summary>
    /// Labels of the deployment (ordinal key order), e.g. <c>app = "web"</c>: its instances carry them, and the
    /// <c>[placement]</c> affinity terms of other deployments select on them. Empty by default.
    /// </summary>
    public IReadOnlyDictionary<string, string> Labels
    {
        get => _labels;
        init => _labels = (value ?? throw new ArgumentNullException(nameof(value))).ToImmutableSortedDictionary(StringComparer.Ordinal, StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public bool Equals(PackageSection? other) =>
        other is not null
        && string.Equals(Name, other.Name, StringComparison.Ordinal)
        && string.Equals(Namespace, other.Namespace, StringComparison.Ordinal)
        && string.Equals(Version, other.Version, StringComparison.Ordinal)
        && string.Equals(Description, other.Description, StringComparison.Ordinal)
        && _authors.SequenceEqual(other._authors, StringComparer.Ordinal)
        && _labels.Count == other._labels.Count
        && _labels.All(p => other._labels.TryGetValue(p.Key, out var v) && string.Equals(p.Value, v, StringComparison.Ordinal));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Name, Version, Description, _authors.Length);
}
