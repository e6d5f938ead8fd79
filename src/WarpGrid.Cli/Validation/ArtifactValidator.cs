using System.Text.RegularExpressions;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime;
using Wasmtime;

namespace WarpGrid.Cli.Validation;

/// <summary>What validation found.</summary>
/// <param name="Kind"><c>module</c> (WASI preview 1 core module) or <c>component</c> (WASI 0.2).</param>
/// <param name="Exports">Export names.</param>
/// <param name="Imports">Import names (<c>module.name</c> for core modules, interface names for components).</param>
internal sealed record ValidationReport(string Kind, IReadOnlyList<string> Exports, IReadOnlyList<string> Imports);

/// <summary>
/// Checks a built artifact the way a node will: WebAssembly magic, a valid module for Wasmtime, and the exports its
/// trigger needs (a WAGI command for core modules; <c>wasi:http/incoming-handler@0.2.x</c> or <c>wasi:cli/run@0.2.x</c> for components).
/// </summary>
internal static partial class ArtifactValidator
{
    /// <summary>Validates <paramref name="bytes"/>; throws <see cref="CliFailure"/> (exit 2) listing every problem.</summary>
    public static ValidationReport Validate(byte[] bytes, TriggerKind trigger, string displayPath)
    {
        switch (ModuleCache.Classify(bytes))
        {
            case WasmBinaryKind.NotWasm:
                var head = Convert.ToHexString(bytes.AsSpan(0, Math.Min(4, bytes.Length))).ToLowerInvariant();
                throw new CliFailure(ExitCodes.Invalid, "not_wasm",
                    $"{displayPath} is not WebAssembly: expected the magic bytes 00 61 73 6d but found {(bytes.Length == 0 ? "an empty file" : head)} ({bytes.Length} bytes)",
                    "check build.output in warp.toml names the file the build writes");
            case WasmBinaryKind.Component:
                return ValidateComponent(bytes, trigger, displayPath);
            default:
                return ValidateModule(bytes, displayPath);
        }
    }

    private static ValidationReport ValidateModule(byte[] bytes, string displayPath)
    {
        using var runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 1 });
        CompiledModule compiled;
        try
        {
            runtime.Modules.Validate(bytes);
            compiled = runtime.Modules.GetOrCompile(bytes);
        }
        catch (WasmValidationException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "invalid_wasm", $"{displayPath}: {ex.Message}", "rebuild it; if the toolchain produced it, report the toolchain version (warp toolchain check)");
        }
        catch (WasmtimeException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "invalid_wasm", $"{displayPath}: the module does not compile: {ex.Message.Trim()}");
        }

        try
        {
            WasmNodeRuntime.ValidateWagiModule(compiled);
        }
        catch (WasmValidationException ex)
        {
            throw new CliFailure(
                ExitCodes.Invalid,
                "trigger_mismatch",
                $"{displayPath} cannot run as a WAGI handler",
                "build a WASI preview 1 command (a main function, target wasm32-wasi / GOOS=wasip1) that only imports wasi_snapshot_preview1",
                [.. ex.Message.Split("; ").Select(m => new ErrorItem(m))]);
        }

        return new ValidationReport(
            "module",
            [.. compiled.Module.Exports.Select(e => e.Name)],
            [.. compiled.Module.Imports.Select(i => i.ModuleName + "." + i.Name)]);
    }

    private static ValidationReport ValidateComponent(byte[] bytes, TriggerKind trigger, string displayPath)
    {
        ComponentInfo info;
        try
        {
            info = ComponentInspector.Inspect(bytes);
        }
        catch (Exception ex) when (ex is FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            throw new CliFailure(ExitCodes.Invalid, "invalid_wasm", $"{displayPath}: malformed component: {ex.Message}");
        }

        using (var engine = new Engine())
        {
            for (var i = 0; i < info.CoreModules.Count; i++)
            {
                var error = Module.Validate(engine, info.CoreModules[i].Span);
                if (!string.IsNullOrEmpty(error))
                {
                    throw new CliFailure(ExitCodes.Invalid, "invalid_wasm", $"{displayPath}: core module #{i} inside the component is invalid: {error.Trim()}");
                }
            }
        }

        var exports = info.Exports.Select(e => e.Name).ToArray();
        var (wanted, regex) = trigger == TriggerKind.Http
            ? ("wasi:http/incoming-handler@0.2.x", HttpHandlerRegex())
            : ("wasi:cli/run@0.2.x", CliRunRegex());
        if (!info.Exports.Any(e => e.Sort == "instance" && regex.IsMatch(e.Name)))
        {
            throw new CliFailure(
                ExitCodes.Invalid,
                "trigger_mismatch",
                $"{displayPath} is a component that does not export {wanted}, which the {trigger.ToString().ToLowerInvariant()} trigger needs (it exports: {(exports.Length == 0 ? "nothing" : string.Join(", ", exports))})",
                trigger == TriggerKind.Http
                    ? "target the wasi:http/proxy world (world handler { include wasi:http/proxy@0.2.10; }) and handle the fetch event"
                    : "target the wasi:cli/command world");
        }

        return new ValidationReport("component", exports, [.. info.Imports.Select(i => i.Name)]);
    }

    [GeneratedRegex(@"^wasi:http/incoming-handler@0\.2\.\d+$")]
    private static partial Regex HttpHandlerRegex();

    [GeneratedRegex(@"^wasi:cli/run@0\.2\.\d+$")]
    private static partial Regex CliRunRegex();
}
