namespace WarpGrid.Core.Manifest;

/// <summary>The outcome of <see cref="ManifestParser.Parse(string, string)"/>: a manifest, or every error found.</summary>
public sealed class ManifestParseResult
{
    internal ManifestParseResult(WarpManifest? manifest, IReadOnlyList<ManifestError> errors)
    {
        Manifest = errors.Count == 0 ? manifest : null;
        Errors = errors;
    }

    /// <summary>The validated manifest, or <see langword="null"/> when there is at least one error.</summary>
    public WarpManifest? Manifest { get; }

    /// <summary>Every error found, sorted by line and column; empty on success.</summary>
    public IReadOnlyList<ManifestError> Errors { get; }

    /// <summary><see langword="true"/> when the manifest is valid and <see cref="Manifest"/> is set.</summary>
    public bool Success => Manifest is not null;
}
