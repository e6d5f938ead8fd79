using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace WarpGrid.Core.Manifest;

/// <summary>
/// Parses and validates <c>warp.toml</c> manifests. Every problem is reported with the file, the 1-based line and
/// column, the dotted field path and what is allowed; all problems are collected in one pass.
/// </summary>
/// <example>
/// <code>
/// var result = ManifestParser.Parse(File.ReadAllText("warp.toml"));
/// if (!result.Success)
/// {
///     foreach (var error in result.Errors) Console.Error.WriteLine(error); // warp.toml:7:17: runtime.max_instances: ...
/// }
/// </code>
/// </example>
public static class ManifestParser
{
    /// <summary>The conventional manifest file name.</summary>
    public const string DefaultFileName = "warp.toml";

    /// <summary>Parses and validates a manifest. Never throws for invalid content: every error is returned.</summary>
    /// <param name="tomlText">The TOML text.</param>
    /// <param name="filePath">The name used in errors and stored in <see cref="WarpManifest.SourcePath"/>.</param>
    /// <returns>The manifest, or every error found sorted by position.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    public static ManifestParseResult Parse(string tomlText, string filePath = DefaultFileName)
    {
        ArgumentNullException.ThrowIfNull(tomlText);
        ArgumentNullException.ThrowIfNull(filePath);

        DocumentSyntax document;
        try
        {
            document = SyntaxParser.Parse(tomlText, filePath, validate: true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Tomlyn reports problems as diagnostics; this guards the "never throws" contract against parser bugs.
            ManifestError[] failure = [new(filePath, 1, 1, string.Empty, "invalid TOML: " + ex.Message)];
            return new ManifestParseResult(null, failure);
        }

        var syntaxErrors = new List<ManifestError>();
        foreach (var diagnostic in document.Diagnostics)
        {
            if (diagnostic.Kind == DiagnosticMessageKind.Error)
            {
                var position = TomlPosition.From(diagnostic.Span.Start);
                syntaxErrors.Add(new ManifestError(filePath, position.Line, position.Column, string.Empty, "invalid TOML: " + diagnostic.Message));
            }
        }

        var validator = new ManifestValidator(filePath, complete: syntaxErrors.Count == 0);
        var manifest = validator.Validate(TomlTreeBuilder.Build(document), filePath);

        var errors = syntaxErrors
            .Concat(validator.Errors)
            .Distinct()
            .OrderBy(e => e.Line)
            .ThenBy(e => e.Column)
            .ToArray();
        return new ManifestParseResult(manifest, errors);
    }

    /// <summary>Parses and validates a manifest, throwing when it is invalid.</summary>
    /// <param name="tomlText">The TOML text.</param>
    /// <param name="filePath">The name used in errors and stored in <see cref="WarpManifest.SourcePath"/>.</param>
    /// <returns>The validated manifest.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="ManifestException">The manifest is invalid; the message lists every error, one per line.</exception>
    public static WarpManifest ParseOrThrow(string tomlText, string filePath = DefaultFileName)
    {
        var result = Parse(tomlText, filePath);
        return result.Manifest ?? throw new ManifestException(result.Errors);
    }

    /// <summary>Reads and validates the manifest at <paramref name="path"/>.</summary>
    /// <param name="path">Path of a <c>warp.toml</c> file; errors name it as given.</param>
    /// <returns>The validated manifest, with <see cref="WarpManifest.SourcePath"/> set to <paramref name="path"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is <see langword="null"/>.</exception>
    /// <exception cref="IOException">The file cannot be read (for example <see cref="FileNotFoundException"/>).</exception>
    /// <exception cref="ManifestException">The manifest is invalid.</exception>
    public static WarpManifest Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return ParseOrThrow(File.ReadAllText(path), path);
    }
}
