using System.Text.RegularExpressions;
using WarpGrid.Cli.Toolchains;

namespace WarpGrid.Cli.Build;

/// <summary>One process a build runs.</summary>
/// <param name="FileName">The executable.</param>
/// <param name="Arguments">Its arguments.</param>
/// <param name="Environment">Variables to set (null removes).</param>
/// <param name="CopyFrom">A file the step produces that is then copied to the output (cargo's target directory).</param>
internal sealed record BuildStep(string FileName, IReadOnlyList<string> Arguments, IReadOnlyDictionary<string, string?> Environment, string? CopyFrom = null)
{
    /// <summary>The command as a shell line, for display.</summary>
    public string Display => string.Join(' ', new[] { FileName }.Concat(Arguments).Select(Quote));

    private static string Quote(string value) =>
        value.Length > 0 && value.All(c => char.IsLetterOrDigit(c) || "-_./=:@,+%".Contains(c)) ? value : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

/// <summary>How to build a package: the language's toolchain command, or the manifest's <c>build.command</c>.</summary>
internal sealed record BuildPlan(string Lang, IReadOnlyList<BuildStep> Steps, bool InProcessWat, string? WatSource, ToolchainStatus? Toolchain);

/// <summary>Turns <c>[build]</c> into the commands of the language's own toolchain.</summary>
internal static partial class BuildPlanner
{
    private static readonly string[] IgnoredDirectories = [".warp", "node_modules", "target", ".git", "zig-cache", "zig-out", "bin", "obj"];

    /// <summary>The canonical <c>build.lang</c> for a <c>--lang</c> value, accepting the manifest's aliases.</summary>
    public static string? Canonical(string lang) => lang.Trim().ToLowerInvariant() switch
    {
        "c" => "c",
        "cpp" or "c++" or "cxx" => "cpp",
        "rust" or "rs" => "rust",
        "go" or "golang" or "tinygo" => "go",
        "zig" => "zig",
        "typescript" or "ts" or "assemblyscript" => "typescript",
        "javascript" or "js" or "node" => "javascript",
        "wat" or "wasm" => "wat",
        var l when l.StartsWith("python", StringComparison.Ordinal) || l == "py" => "python",
        _ => null,
    };

    /// <summary>Guesses the language from <c>build.source</c> or the files in the package directory.</summary>
    public static string? Infer(string directory, string? source)
    {
        if (source is not null && FromExtension(Path.GetExtension(source)) is { } fromSource)
        {
            return fromSource;
        }

        if (File.Exists(Path.Combine(directory, "Cargo.toml")))
        {
            return "rust";
        }

        if (File.Exists(Path.Combine(directory, "go.mod")))
        {
            return "go";
        }

        var found = Directory.EnumerateFiles(directory)
            .Select(f => FromExtension(Path.GetExtension(f)))
            .Where(l => l is not null)
            .Distinct()
            .ToArray();
        return found.Length == 1 ? found[0] : null;
    }

    private static string? FromExtension(string extension) => extension.ToLowerInvariant() switch
    {
        ".c" => "c",
        ".cpp" or ".cc" or ".cxx" => "cpp",
        ".rs" => "rust",
        ".go" => "go",
        ".zig" => "zig",
        ".ts" => "typescript",
        ".js" or ".mjs" => "javascript",
        ".wat" => "wat",
        ".py" => "python",
        _ => null,
    };

    /// <summary>True when the output is missing or older than <c>warp.toml</c> or any source file in the package directory.</summary>
    public static bool IsStale(string directory, string output)
    {
        if (!File.Exists(output))
        {
            return true;
        }

        var built = File.GetLastWriteTimeUtc(output);
        var fullOutput = Path.GetFullPath(output);
        return EnumerateSources(directory).Any(f => !string.Equals(f, fullOutput, StringComparison.Ordinal) && File.GetLastWriteTimeUtc(f) > built);
    }

    private static IEnumerable<string> EnumerateSources(string directory)
    {
        foreach (var file in Directory.EnumerateFiles(directory))
        {
            yield return Path.GetFullPath(file);
        }

        foreach (var sub in Directory.EnumerateDirectories(directory))
        {
            if (IgnoredDirectories.Contains(Path.GetFileName(sub), StringComparer.Ordinal))
            {
                continue;
            }

            foreach (var file in EnumerateSources(sub))
            {
                yield return file;
            }
        }
    }

    /// <summary>Plans the build. Throws <see cref="CliFailure"/> (exit 3) when the toolchain is missing, (exit 2) when sources are missing.</summary>
    public static async Task<BuildPlan> PlanAsync(string lang, string directory, string output, string? source, string? command, ToolLocator locator, CancellationToken cancellationToken)
    {
        var toolsPath = BuildPath(locator);
        if (command is not null)
        {
            // A custom command runs in the package directory through the shell, with the repository's tools on PATH.
            return new BuildPlan(lang, [new BuildStep("/bin/sh", ["-c", command], new Dictionary<string, string?> { ["PATH"] = toolsPath, ["WARP_OUTPUT"] = output })], false, null, null);
        }

        if (lang == "wat")
        {
            var wat = source is not null ? Path.Combine(directory, source) : SingleSource(directory, lang, ".wat");
            return new BuildPlan(lang, [], true, wat, null);
        }

        var toolchain = await ToolchainCatalog.CheckAsync(lang, locator, cancellationToken).ConfigureAwait(false);
        if (!toolchain.Found)
        {
            throw new CliFailure(
                ExitCodes.ToolchainMissing,
                "toolchain_missing",
                $"the {lang} toolchain is not installed ({toolchain.Note})",
                "install it with: " + toolchain.Install + "   (then check with: warp toolchain check " + lang + ")");
        }

        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        switch (lang)
        {
            case "c":
            case "cpp":
            {
                var sources = source is not null
                    ? [source]
                    : lang == "c" ? Sources(directory, lang, ".c") : Sources(directory, lang, ".cpp", ".cc", ".cxx");
                List<string> args = ["--target=wasm32-wasi", "-O2"];
                if (lang == "cpp")
                {
                    args.Add("-fno-exceptions");
                }

                args.AddRange(["-Wl,--strip-all", "-o", output]);
                args.AddRange(sources);
                var compiler = toolchain.PathOf(lang == "c" ? "clang-14" : "clang++-14")!;
                return new BuildPlan(lang, [new BuildStep(compiler, args, env)], false, null, toolchain);
            }

            case "rust":
            {
                var rustc = toolchain.PathOf("rustc")!;
                var cargoToml = Path.Combine(directory, "Cargo.toml");
                if (File.Exists(cargoToml))
                {
                    var targetDir = Path.Combine(directory, ".warp", "cargo-target");
                    env["RUSTC"] = rustc;
                    env["CARGO_TARGET_DIR"] = targetDir;
                    env["CARGO_NET_OFFLINE"] = "true";
                    env["RUSTUP_TOOLCHAIN"] = null;
                    var bin = CargoBinName(File.ReadAllText(cargoToml)) ?? throw new CliFailure(
                        ExitCodes.Invalid, "build_config", $"{cargoToml} has no [package] name", "add [package] name = \"...\" to Cargo.toml");
                    return new BuildPlan(lang,
                    [
                        new BuildStep(toolchain.PathOf("cargo")!, ["build", "--release", "--target", "wasm32-wasi", "--offline"], env,
                            Path.Combine(targetDir, "wasm32-wasi", "release", bin + ".wasm")),
                    ], false, null, toolchain);
                }

                var main = source ?? (File.Exists(Path.Combine(directory, "src", "main.rs")) ? Path.Combine("src", "main.rs") : SingleSource(directory, lang, ".rs"));
                return new BuildPlan(lang, [new BuildStep(rustc, ["--target", "wasm32-wasi", "--edition", "2021", "-C", "opt-level=s", "-C", "strip=symbols", "-o", output, main], env)], false, null, toolchain);
            }

            case "go":
            {
                env["GOOS"] = "wasip1";
                env["GOARCH"] = "wasm";
                env["CGO_ENABLED"] = "0";
                env["GOTOOLCHAIN"] = "local";
                env["GOPROXY"] = "off";
                env["GOFLAGS"] = "-buildvcs=false";
                env["GOTELEMETRY"] = "off";
                var target = source is not null && source.EndsWith(".go", StringComparison.Ordinal) ? source : ".";
                return new BuildPlan(lang, [new BuildStep(toolchain.PathOf("go")!, ["build", "-trimpath", "-ldflags=-s -w", "-o", output, target], env)], false, null, toolchain);
            }

            case "zig":
            {
                var main = source ?? (File.Exists(Path.Combine(directory, "main.zig")) ? "main.zig" : SingleSource(directory, lang, ".zig"));
                env["ZIG_LOCAL_CACHE_DIR"] = Path.Combine(directory, ".warp", "zig-cache");
                env["ZIG_GLOBAL_CACHE_DIR"] = locator.ToolsDirectory is { } tools ? Path.Combine(tools, "zig-global-cache") : Path.Combine(directory, ".warp", "zig-global-cache");
                return new BuildPlan(lang,
                [
                    new BuildStep(toolchain.PathOf("zig")!, ["build-exe", main, "-target", "wasm32-wasi", "-O", "ReleaseSmall", "-fstrip", "--stack", "65536", "-femit-bin=" + output], env),
                ], false, null, toolchain);
            }

            case "typescript":
            {
                var main = source ?? FirstExisting(directory, "index.ts", "main.ts", "app.ts") ?? SingleSource(directory, lang, ".ts");
                env["PATH"] = toolsPath;

                // asc 0.28 resolves the config's "lib" wrongly when --config is absolute: pass it relative.
                var asconfig = Path.GetRelativePath(directory, toolchain.PathOf("@assemblyscript/wasi-shim")!);
                return new BuildPlan(lang,
                [
                    new BuildStep(toolchain.PathOf("asc")!, [main, "--config", asconfig, "-O3", "--noAssert", "--outFile", output], env),
                ], false, null, toolchain);
            }

            case "javascript":
            {
                var main = source ?? FirstExisting(directory, "app.js", "index.js", "main.js") ?? SingleSource(directory, lang, ".js");
                var wit = Path.Combine(directory, "wit");
                if (!Directory.Exists(wit))
                {
                    throw new CliFailure(ExitCodes.Invalid, "build_config", $"{wit} does not exist: a JavaScript component needs the WIT world it implements",
                        "add a wit/ directory with a world exporting wasi:http/incoming-handler@0.2.10 and its wasi deps (copy samples/hello-js/wit)");
                }

                var world = WorldName(wit);
                // componentize-js 0.23 runs its splicer on preview2-shim 0.26, which preopens nothing by default: preopen / so
                // it can read the WIT and the source.
                var shim = new Uri(Path.GetFullPath(toolchain.PathOf("@bytecodealliance/preview2-shim")!)).AbsoluteUri;
                var preload = $"data:text/javascript,import{{_setPreopens}}from'{shim}';_setPreopens({{'/':'/'}});";
                return new BuildPlan(lang,
                [
                    new BuildStep(toolchain.PathOf("node")!, ["--import", preload, toolchain.PathOf("componentize-js")!, "--wit", wit, "--world-name", world, "-o", output, Path.GetFullPath(Path.Combine(directory, main))], env),
                ], false, null, toolchain);
            }

            default:
                throw new CliFailure(ExitCodes.Invalid, "build_config", $"no build recipe for language '{lang}'", "set build.command in warp.toml");
        }
    }

    /// <summary>PATH for builds: the repository's tool binaries first.</summary>
    public static string BuildPath(ToolLocator locator)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        if (locator.ToolsDirectory is { } tools)
        {
            path = string.Join(Path.PathSeparator, Path.Combine(tools, "bin"), Path.Combine(tools, "node_modules", ".bin"), path);
        }

        return path;
    }

    private static string[] Sources(string directory, string lang, params string[] extensions)
    {
        var files = Directory.EnumerateFiles(directory)
            .Where(f => extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Select(f => Path.GetFileName(f))
            .Order(StringComparer.Ordinal)
            .ToArray();
        return files.Length > 0
            ? files
            : throw new CliFailure(ExitCodes.Invalid, "source_missing", $"no {string.Join("/", extensions)} source file in {directory}", $"add the sources or set build.source in warp.toml ({lang})");
    }

    private static string SingleSource(string directory, string lang, string extension)
    {
        var files = Sources(directory, lang, extension);
        return files.Length == 1
            ? files[0]
            : throw new CliFailure(ExitCodes.Invalid, "source_ambiguous", $"{files.Length} {extension} files in {directory} ({string.Join(", ", files)})", "set build.source in warp.toml to the main one");
    }

    private static string? FirstExisting(string directory, params string[] names) => names.FirstOrDefault(n => File.Exists(Path.Combine(directory, n)));

    private static string WorldName(string witDirectory)
    {
        var worlds = Directory.EnumerateFiles(witDirectory, "*.wit")
            .SelectMany(f => WorldRegex().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value))
            .Distinct(StringComparer.Ordinal)
            .ToArray();
        return worlds.Length == 1 ? worlds[0]
            : worlds.Contains("handler") ? "handler"
            : worlds.Length == 0 ? throw new CliFailure(ExitCodes.Invalid, "build_config", $"no world in {witDirectory}/*.wit", "declare the world to build, e.g. world handler { include wasi:http/proxy@0.2.10; }")
            : throw new CliFailure(ExitCodes.Invalid, "build_config", $"several worlds in {witDirectory}/*.wit ({string.Join(", ", worlds)})", "name the one to build 'handler', or set build.command");
    }

    internal static string? CargoBinName(string cargoToml)
    {
        var bin = BinSectionRegex().Match(cargoToml);
        if (bin.Success)
        {
            return bin.Groups[1].Value;
        }

        var package = PackageSectionRegex().Match(cargoToml);
        return package.Success ? package.Groups[1].Value : null;
    }

    [GeneratedRegex(@"^\s*world\s+([a-z][a-z0-9-]*)\s*\{", RegexOptions.Multiline)]
    private static partial Regex WorldRegex();

    [GeneratedRegex(@"^\[\[bin\]\][^\[]*?^\s*name\s*=\s*""([^""]+)""", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex BinSectionRegex();

    [GeneratedRegex(@"^\[package\][^\[]*?^\s*name\s*=\s*""([^""]+)""", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex PackageSectionRegex();
}
