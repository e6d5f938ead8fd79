namespace WarpGrid.Core.Manifest;

/// <summary>Thrown by <see cref="ManifestParser.ParseOrThrow(string, string)"/> and <see cref="ManifestParser.Load(string)"/> when a manifest is invalid.</summary>
public sealed class ManifestException : Exception
{
    /// <summary>Creates the exception; its message lists every error, one per line.</summary>
    /// <param name="errors">The errors, at least one.</param>
    public ManifestException(IReadOnlyList<ManifestError> errors)
        : base(BuildMessage(errors))
    {
        Errors = [.. errors];
    }

    /// <summary>Every error found, in file order.</summary>
    public IReadOnlyList<ManifestError> Errors { get; }

    private static string BuildMessage(IReadOnlyList<ManifestError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        return errors.Count == 0
            ? "The manifest is invalid."
            : string.Join(Environment.NewLine, errors.Select(e => e.ToString()));
    }
}
