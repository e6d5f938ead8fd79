namespace WarpGrid.Core.Manifest;

/// <summary>One problem found in a manifest, with its exact position.</summary>
/// <param name="File">The file name or path given to the parser.</param>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
/// <param name="Field">Dotted path of the field (e.g. <c>runtime.resources.memory_limit</c>); empty for TOML syntax errors.</param>
/// <param name="Message">What is wrong and what is allowed.</param>
public sealed record ManifestError(string File, int Line, int Column, string Field, string Message)
{
    /// <summary>Formats the error as <c>file:line:column: field: message</c>.</summary>
    /// <returns>For example <c>warp.toml:12:17: runtime.max_instances: must be &gt;= runtime.min_instances (3), got 2</c>.</returns>
    public override string ToString() =>
        string.IsNullOrEmpty(Field)
            ? $"{File}:{Line}:{Column}: {Message}"
            : $"{File}:{Line}:{Column}: {Field}: {Message}";
}
