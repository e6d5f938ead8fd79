using System.CommandLine;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Build;
using WarpGrid.Core.Oci;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp pack [dir] [--out DIR] [--lang LANG] [--json]</c>.</summary>
internal static class PackCommand
{
    public static Command Create(CliContext context)
    {
        var dir = CommandHelpers.NoOptionLikeValues(new Argument<string>("dir") { Description = "The package directory (holds warp.toml).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "." });
        var outOption = new Option<string?>("--out") { Description = "OCI image layout directory to write (default <dir>/.warp/oci).", HelpName = "DIR" };
        var lang = new Option<string?>("--lang") { Description = "Override build.lang (c, cpp, rust, go, zig, typescript, javascript, wat).", HelpName = "LANG" };
        var json = CommandHelpers.JsonOption();
        var command = new Command("pack", "Build the package with its language's toolchain, validate the .wasm and write an OCI artifact.") { dir, outOption, lang, json };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var result = await Packer.PackAsync(context, parse.GetValue(dir)!, parse.GetValue(outOption), parse.GetValue(lang), BuildPolicy.Always, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                var document = ToJson(result);
                document["ok"] = true;
                context.WriteJson(document);
            }
            else
            {
                WriteHuman(context, result);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    public static void WriteHuman(CliContext context, PackResult result)
    {
        var m = result.Manifest;
        var kind = result.Validation.Kind == "component" ? "WASI 0.2 component" : "WASI preview 1 module";
        context.Out.WriteLine($"packed {m.Package.Name} {m.Package.Version}: {result.Lang}, {kind}, {result.Wasm.Length:N0} bytes{(result.Built ? $", built in {result.BuildSeconds:0.00}s" : ", not rebuilt")}");
        context.Out.WriteLine($"  wasm      {Packer.DisplayPath(result.WasmPath)} ({result.WasmDigest})");
        context.Out.WriteLine($"  exports   {string.Join(", ", result.Validation.Exports)}");
        context.Out.WriteLine($"  layout    {Packer.DisplayPath(result.LayoutDirectory)} (tag {result.Tag})");
        context.Out.WriteLine($"  artifact  {result.Artifact.ManifestDigest}");
    }

    /// <summary>The JSON shape of a pack result (docs/cli.md).</summary>
    public static JsonObject ToJson(PackResult result)
    {
        var m = result.Manifest;
        return new JsonObject
        {
            ["name"] = m.Package.Name,
            ["version"] = m.Package.Version,
            ["lang"] = result.Lang,
            ["trigger"] = m.Runtime.Trigger.ToString().ToLowerInvariant(),
            ["route"] = m.Runtime.Route,
            ["kind"] = result.Validation.Kind,
            ["wasm"] = new JsonObject
            {
                ["path"] = result.WasmPath,
                ["size"] = result.Wasm.Length,
                ["digest"] = result.WasmDigest,
            },
            ["exports"] = new JsonArray([.. result.Validation.Exports.Select(e => (JsonNode)e)]),
            ["imports"] = new JsonArray([.. result.Validation.Imports.Select(e => (JsonNode)e)]),
            ["build"] = new JsonObject
            {
                ["built"] = result.Built,
                ["command"] = result.BuildCommand,
                ["seconds"] = result.BuildSeconds is { } s ? Math.Round(s, 3) : null,
            },
            ["artifact"] = new JsonObject
            {
                ["layout"] = result.LayoutDirectory,
                ["tag"] = result.Tag,
                ["digest"] = result.Artifact.ManifestDigest,
                ["created"] = result.Artifact.Created,
                ["mediaType"] = OciMediaTypes.ImageManifest,
                ["artifactType"] = OciMediaTypes.WasmConfig,
                ["config"] = new JsonObject { ["mediaType"] = OciMediaTypes.WasmConfig, ["digest"] = result.Artifact.ConfigDigest },
                ["layer"] = new JsonObject { ["mediaType"] = OciMediaTypes.WasmLayer, ["digest"] = result.Artifact.LayerDigest, ["size"] = result.Wasm.Length },
            },
        };
    }
}
