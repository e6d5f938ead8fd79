using System.Collections.Immutable;

namespace WarpGrid.Core.Manifest;

/// <summary>The <c>[capabilities]</c> section: what the guest may use. Nothing is granted by default except logging.</summary>
public sealed record CapabilitiesSection
{
    private readonly ImmutableArray<string> _httpOutbound = [];
    private readonly ImmutableArray<string> _keyValue = [];
    private readonly ImmutableSortedDictionary<string, string> _environment = ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);
    private readonly ImmutableSortedDictionary<string, string> _config = ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);

    /// <summary>Hosts (or globs such as <c>*.internal.svc</c>) the guest may call over HTTP; empty by default (nothing allowed).</summary>
    public IReadOnlyList<string> HttpOutbound
    {
        get => _httpOutbound;
        init => _httpOutbound = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    /// <summary>Whether the guest log import is available; default <see langword="true"/>.</summary>
    public bool Logging { get; init; } = true;

    /// <summary>Key-value stores the guest may open; empty by default.</summary>
    public IReadOnlyList<string> KeyValue
    {
        get => _keyValue;
        init => _keyValue = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    /// <summary>Environment variables passed to the guest (ordinal key order); empty by default.</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get => _environment;
        init => _environment = ToSorted(value);
    }

    /// <summary>Runtime configuration values (ordinal key order); empty by default.</summary>
    public IReadOnlyDictionary<string, string> Config
    {
        get => _config;
        init => _config = ToSorted(value);
    }

    /// <inheritdoc />
    public bool Equals(CapabilitiesSection? other) =>
        other is not null
        && Logging == other.Logging
        && _httpOutbound.SequenceEqual(other._httpOutbound, StringComparer.Ordinal)
        && _keyValue.SequenceEqual(other._keyValue, StringComparer.Ordinal)
        && SameEntries(_environment, other._environment)
        && SameEntries(_config, other._config);

    /// <inheritdoc />
    public override int GetHashCode() =>
        HashCode.Combine(Logging, _httpOutbound.Length, _keyValue.Length, _environment.Count, _config.Count);

    private static ImmutableSortedDictionary<string, string> ToSorted(IReadOnlyDictionary<string, string> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.ToImmutableSortedDictionary(StringComparer.Ordinal, StringComparer.Ordinal);
    }

    private static bool SameEntries(ImmutableSortedDictionary<string, string> a, ImmutableSortedDictionary<string, string> b) =>
        a.Count == b.Count
        && a.All(pair => b.TryGetValue(pair.Key, out var other) && string.Equals(pair.Value, other, StringComparison.Ordinal));
}
