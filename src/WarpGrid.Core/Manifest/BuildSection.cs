namespace WarpGrid.Core.Manifest;

/// <summary>The source language of a package (<c>build.lang</c>).</summary>
public enum BuildLanguage
{
    /// <summary><c>c</c></summary>
    C,

    /// <summary><c>cpp</c></summary>
    Cpp,

    /// <summary><c>rust</c></summary>
    Rust,

    /// <summary><c>go</c></summary>
    Go,

    /// <summary><c>zig</c></summary>
    Zig,

    /// <summary><c>typescript</c></summary>
    TypeScript,

    /// <summary><c>javascript</c></summary>
    JavaScript,

    /// <summary><c>wat</c> (WebAssembly text format)</summary>
    Wat,
}

/// <summary>The <c>[build]</c> section: how the <c>.wasm</c> module is produced.</summary>
public sealed record BuildSection
{
    /// <summary>The source language, or <see langword="null"/> when not declared.</summary>
    public BuildLanguage? Lang { get; init; }

    /// <summary>Path of the main source file, or <see langword="null"/>.</summary>
    public string? Source { get; init; }

    /// <summary>Custom build command, or <see langword="null"/> to use the language's default toolchain.</summary>
    public string? Command { get; init; }

    /// <summary>Path of the built module; default <c>&lt;name&gt;.wasm</c>.</summary>
    public required string Output { get; init; }

    /// <summary>The default <see cref="Output"/> for a package name: <c>&lt;name&gt;.wasm</c>.</summary>
    /// <param name="packageName">The package name.</param>
    /// <returns>The default output path.</returns>
    public static string DefaultOutputFor(string packageName)
    {
        ArgumentNullException.ThrowIfNull(packageName);
        return packageName + ".wasm";
    }
}
