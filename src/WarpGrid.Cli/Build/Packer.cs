using System.ComponentModel;
using System.Diagnostics;
using WarpGrid.Cli.Toolchains;
using WarpGrid.Cli.Validation;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Oci;
using Wasmtime;

namespace WarpGrid.Cli.Build;

/// <summary>When <see cref="Packer"/> runs the toolchain.</summary>
internal enum BuildPolicy
{
    /// <summary>Always (<c>warp pack</c>).</summary>
    Always,

    /// <summary>Only when the output is missing or older than a source (<c>warp deploy</c>); an existing output is used when the toolchain is missing.</summary>
    IfStale,
}

/// <summary>The result of packing a directory.</summary>
internal sealed record PackResult(
    string Directory,
    string ManifestPath,
    string ManifestText,
    WarpManifest Manifest,
    string Lang,
    string WasmPath,
    byte[] Wasm,
    string WasmDigest,
    ValidationReport Validation,
    string? BuildCommand,
    double? BuildSeconds,
    bool Built,
    string LayoutDirectory,
    string Tag,
    OciLayoutResult Artifact);

/// <summary>What was written to the OCI image layout.</summary>
/// <param name="ManifestDigest">The artifact digest: the digest of the image manifest.</param>
/// <param name="ConfigDigest">Digest of the config blob (<c>application/vnd.wasm.config.v0+json</c>).</param>
/// <param name="LayerDigest">Digest of the wasm layer (<c>application/wasm</c>), the wasm's sha256.</param>
/// <param name="Created">The <c>org.opencontainers.image.created</c> annotation.</param>
internal sealed record OciLayoutResult(string ManifestDigest, string ConfigDigest, string LayerDigest, string Created);

/// <summary><c>warp pack</c>: manifest → toolchain → validation → OCI image layout.</summary>
internal static class Packer
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);

    public static async Task<PackResult> PackAsync(CliContext context, string directoryArgument, string? outDirectory, string? langOverride, BuildPolicy policy, CancellationToken cancellationToken)
    {
        var directory = Path.GetFullPath(directoryArgument);
        if (File.Exists(directory) && Path.GetFileName(directory) == ManifestParser.DefaultFileName)
        {
            directory = Path.GetDirectoryName(directory)!;
        }

        string? lang = null;
        if (langOverride is not null)
        {
            lang = BuildPlanner.Canonical(langOverride) ?? throw new CliFailure(
                ExitCodes.Usage, "usage", $"unknown --lang '{langOverride}'", "use one of: c, cpp, rust, go, zig, typescript, javascript, wat");
            if (lang == "python")
            {
                throw PythonFailure(null);
            }
        }

        if (!Directory.Exists(directory))
        {
            throw new CliFailure(ExitCodes.Invalid, "not_found", $"directory {directoryArgument} does not exist", "pass the directory that holds warp.toml");
        }

        var manifestPath = Path.Combine(directory, ManifestParser.DefaultFileName);
        if (!File.Exists(manifestPath))
        {
            throw new CliFailure(ExitCodes.Invalid, "manifest_missing", $"no {ManifestParser.DefaultFileName} in {directory}",
                "create one; the smallest is: [package] name = \"my-app\" (see docs/manifest.md)");
        }

        var manifestText = await File.ReadAllTextAsync(manifestPath, cancellationToken).ConfigureAwait(false);
        var display = DisplayPath(manifestPath);
        var parsed = ManifestParser.Parse(manifestText, display);
        if (!parsed.Success)
        {
            var errors = parsed.Errors.Select(e => new ErrorItem(e.Message, e.Field, e.File, e.Line, e.Column)).ToArray();
            var pythonError = parsed.Errors.FirstOrDefault(e => e.Field == "build.lang" && e.Message.Contains("Python", StringComparison.Ordinal));
            if (pythonError is not null)
            {
                throw PythonFailure(errors);
            }

            throw new CliFailure(ExitCodes.Invalid, "manifest_invalid",
                $"{display} has {errors.Length} error{(errors.Length == 1 ? string.Empty : "s")}", "fix them and run the command again (docs/manifest.md lists every field)", errors);
        }

        var manifest = parsed.Manifest!;
        var output = Path.GetFullPath(Path.Combine(directory, manifest.Build.Output));
        lang ??= manifest.Build.Lang is { } declared ? ToToml(declared) : BuildPlanner.Infer(directory, manifest.Build.Source);

        EnsureIgnored(Path.Combine(directory, ".warp"));
        var locator = new ToolLocator(context, directory);
        string? buildCommand = null;
        double? buildSeconds = null;
        var built = false;
        var needBuild = policy == BuildPolicy.Always || BuildPlanner.IsStale(directory, output);
        if (needBuild)
        {
            if (lang is null && manifest.Build.Command is null)
            {
                if (!File.Exists(output))
                {
                    throw new CliFailure(ExitCodes.Invalid, "lang_unknown", $"cannot tell which language {directory} is written in, and {manifest.Build.Output} does not exist",
                        "set build.lang (c, cpp, rust, go, zig, typescript, javascript, wat) or build.command in warp.toml");
                }

                context.Err.WriteLine($"warning: no build.lang or build.command; using the existing {manifest.Build.Output}");
            }
            else
            {
                BuildPlan? plan = null;
                try
                {
                    plan = await BuildPlanner.PlanAsync(lang ?? "custom", directory, output, manifest.Build.Source, manifest.Build.Command, locator, cancellationToken).ConfigureAwait(false);
                }
                catch (CliFailure failure) when (failure.ExitCode == ExitCodes.ToolchainMissing && policy == BuildPolicy.IfStale && File.Exists(output))
                {
                    context.Err.WriteLine($"warning: {failure.Message}; using the existing {manifest.Build.Output}, which may be older than the sources");
                }

                if (plan is not null)
                {
                    (buildCommand, buildSeconds) = await RunPlanAsync(context, plan, manifest, directory, output, cancellationToken).ConfigureAwait(false);
                    built = true;
                }
            }
        }

        if (!File.Exists(output))
        {
            throw new CliFailure(ExitCodes.Invalid, "output_missing", $"the build did not produce {manifest.Build.Output}",
                "set build.output in warp.toml to the file the build writes");
        }

        var wasm = await File.ReadAllBytesAsync(output, cancellationToken).ConfigureAwait(false);
        var validation = ArtifactValidator.Validate(wasm, manifest.Runtime.Trigger, DisplayPath(output));

        var layout = outDirectory is not null ? Path.GetFullPath(outDirectory) : Path.Combine(directory, ".warp", "oci");
        var tag = TagFor(manifest.Package.Version);
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [OciAnnotations.Title] = manifest.Package.Name,
            [OciAnnotations.Version] = manifest.Package.Version,
            [OciAnnotations.Created] = CreatedTimestamp(context, output),
            ["dev.warpgrid.trigger"] = manifest.Runtime.Trigger.ToString().ToLowerInvariant(),
            ["dev.warpgrid.route"] = manifest.Runtime.Route,
        };
        if (manifest.Package.Description is { } description)
        {
            annotations[OciAnnotations.Description] = description;
        }

        if (manifest.Package.Authors.Count > 0)
        {
            annotations[OciAnnotations.Authors] = string.Join(", ", manifest.Package.Authors);
        }

        if (lang is not null)
        {
            annotations["dev.warpgrid.lang"] = lang;
        }

        var manifestDigest = await OciImageLayout.WriteWasmAsync(layout, tag, wasm, annotations, cancellationToken: cancellationToken).ConfigureAwait(false);
        var written = await OciImageLayout.ReadWasmAsync(layout, tag, cancellationToken: cancellationToken).ConfigureAwait(false); // read back, every blob verified
        var artifact = new OciLayoutResult(manifestDigest, written.Manifest.Config.Digest, written.Manifest.Layers[0].Digest, annotations[OciAnnotations.Created]);

        return new PackResult(directory, manifestPath, manifestText, manifest, lang ?? "custom", output, wasm, OciDigest.Compute(wasm), validation,
            buildCommand, buildSeconds, built, layout, tag, artifact);
    }

    /// <summary>
    /// The artifact's <c>created</c> time: <c>$SOURCE_DATE_EPOCH</c> when set (reproducible builds: same sources, same
    /// digest), else when the .wasm was last written.
    /// </summary>
    private static string CreatedTimestamp(CliContext context, string output)
    {
        var time = long.TryParse(context.GetEnv("SOURCE_DATE_EPOCH"), out var epoch)
            ? DateTimeOffset.FromUnixTimeSeconds(epoch).UtcDateTime
            : File.GetLastWriteTimeUtc(output);
        return time.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The failure for Python: exit 3 with what would be needed.</summary>
    public static CliFailure PythonFailure(IReadOnlyList<ErrorItem>? errors) =>
        new(ExitCodes.ToolchainMissing, "toolchain_unavailable", ToolchainCatalog.PythonExplanation,
            "set build.lang to one of c, cpp, rust, go, zig, typescript, javascript, wat (warp toolchain check shows what is installed)", errors);

    private static async Task<(string Command, double Seconds)> RunPlanAsync(CliContext context, BuildPlan plan, WarpManifest manifest, string directory, string output, CancellationToken cancellationToken)
    {
        var label = $"compiling {manifest.Package.Name} ({plan.Lang})";
        if (plan.InProcessWat)
        {
            var started = Stopwatch.GetTimestamp();
            var text = await File.ReadAllTextAsync(Path.Combine(directory, plan.WatSource!), cancellationToken).ConfigureAwait(false);
            byte[] bytes;
            try
            {
                bytes = Module.ConvertText(text);
            }
            catch (WasmtimeException ex)
            {
                throw new CliFailure(ExitCodes.Invalid, "build_failed", $"{plan.WatSource}: invalid WAT: {ex.Message.Trim()}", "fix the text format error above");
            }

            Directory.CreateDirectory(Path.GetDirectoryName(output)!);
            await File.WriteAllBytesAsync(output, bytes, cancellationToken).ConfigureAwait(false);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            context.Err.WriteLine($"{label}: wat -> wasm (built-in) in {seconds:0.00}s");
            return ($"(built-in) wat2wasm {plan.WatSource}", seconds);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var total = 0.0;
        var commands = new List<string>();
        foreach (var step in plan.Steps)
        {
            commands.Add(step.Display);
            ProcessResult result;
            try
            {
                result = await ProcessRunner.RunAsync(step.FileName, step.Arguments, directory, step.Environment, context, label, BuildTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (Win32Exception ex)
            {
                throw new CliFailure(ExitCodes.ToolchainMissing, "toolchain_missing", $"cannot run {step.FileName}: {ex.Message}",
                    ToolchainCatalog.InstallCommands.TryGetValue(plan.Lang, out var install) ? "install it with: " + install : "check build.command in warp.toml");
            }

            total += result.Elapsed.TotalSeconds;
            if (result.ExitCode != 0)
            {
                throw new CliFailure(ExitCodes.Invalid, "build_failed",
                    $"the {plan.Lang} build failed (exit code {result.ExitCode}) after {result.Elapsed.TotalSeconds:0.0}s",
                    "fix the errors above; the command was: " + step.Display, log: result.Output);
            }

            if (step.CopyFrom is not null)
            {
                if (!File.Exists(step.CopyFrom))
                {
                    throw new CliFailure(ExitCodes.Invalid, "output_missing", $"the build did not produce {step.CopyFrom}", "check the [[bin]] / [package] name in Cargo.toml", log: result.Output);
                }

                File.Copy(step.CopyFrom, output, overwrite: true);
            }
        }

        if (!OperatingSystem.IsWindows() && File.Exists(output))
        {
            // linkers mark their output executable; a .wasm is data
            File.SetUnixFileMode(output, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        // zig 0.11 leaves the object file next to the output
        var objectFile = output + ".o";
        if (plan.Lang == "zig" && File.Exists(objectFile))
        {
            File.Delete(objectFile);
        }

        context.Err.WriteLine($"{label}: done in {total:0.00}s");
        return (string.Join(" && ", commands), total);
    }

    private static string ToToml(BuildLanguage lang) => lang switch
    {
        BuildLanguage.C => "c",
        BuildLanguage.Cpp => "cpp",
        BuildLanguage.Rust => "rust",
        BuildLanguage.Go => "go",
        BuildLanguage.Zig => "zig",
        BuildLanguage.TypeScript => "typescript",
        BuildLanguage.JavaScript => "javascript",
        BuildLanguage.Wat => "wat",
        _ => lang.ToString().ToLowerInvariant(),
    };

    /// <summary>An OCI tag for a package version: characters outside <c>[A-Za-z0-9_.-]</c> (e.g. semver's <c>+</c>) become <c>_</c>.</summary>
    internal static string TagFor(string version)
    {
        var chars = version.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' ? c : '_').ToArray();
        var tag = new string(chars);
        return tag.Length == 0 ? "latest" : tag.Length > 128 ? tag[..128] : tag;
    }

    internal static string DisplayPath(string path)
    {
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), path);
        return relative.StartsWith("..", StringComparison.Ordinal) ? path : relative;
    }

    private static void EnsureIgnored(string warpDirectory)
    {
        Directory.CreateDirectory(warpDirectory);
        var ignore = Path.Combine(warpDirectory, ".gitignore");
        if (!File.Exists(ignore))
        {
            File.WriteAllText(ignore, "# created by warp pack: build outputs, never committed\n*\n");
        }
    }
}
