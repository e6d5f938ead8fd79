using System.CommandLine;
using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Build;
using WarpGrid.Core.Oci;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp push &lt;reference&gt; [dir]</c> and <c>warp pull &lt;reference&gt; [--out FILE]</c> over <see cref="OciRegistryClient"/>.</summary>
internal static class RegistryCommands
{
    public static Command CreatePush(CliContext context)
    {
        var reference = CommandHelpers.NoOptionLikeValues(new Argument<string>("reference") { Description = "Where to push, e.g. 127.0.0.1:5000/hello:1.0 (without a tag: the package version)." });
        var dir = CommandHelpers.NoOptionLikeValues(new Argument<string>("dir") { Description = "The package directory (packed first when its output is missing or stale).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "." });
        var json = CommandHelpers.JsonOption();
        var command = new Command("push", "Pack the package (if needed) and push its Wasm OCI artifact to a registry; the digest is preserved.") { reference, dir, json };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var text = parse.GetValue(reference)!;
            ParseReference(text); // usage errors before any build
            var pack = await Packer.PackAsync(context, parse.GetValue(dir)!, null, null, BuildPolicy.IfStale, cancellationToken).ConfigureAwait(false);
            var target = ParseReference(HasTagOrDigest(text) ? text : text + ":" + pack.Tag);
            using var client = new OciRegistryClient();
            var digest = await Registry(target, () => client.PushAsync(pack.LayoutDirectory, pack.Tag, target, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject
                {
                    ["ok"] = true,
                    ["reference"] = target.ToString(),
                    ["digest"] = digest,
                    ["size"] = pack.Wasm.Length,
                    ["pack"] = PackCommand.ToJson(pack),
                });
            }
            else
            {
                context.Out.WriteLine($"pushed {pack.Manifest.Package.Name} {pack.Manifest.Package.Version} to {target} ({pack.Wasm.Length:N0} bytes)");
                context.Out.WriteLine($"  digest    {digest}");
                context.Out.WriteLine($"  deploy    warp deploy {target.RepositoryReference}@{digest}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command CreatePull(CliContext context)
    {
        var reference = CommandHelpers.NoOptionLikeValues(new Argument<string>("reference") { Description = "What to pull, e.g. 127.0.0.1:5000/hello:1.0 or …@sha256:<hex>." });
        var output = new Option<string?>("--out") { Description = "File to write the .wasm to (default <repository-name>.wasm in the current directory).", HelpName = "FILE" };
        var json = CommandHelpers.JsonOption();
        var command = new Command("pull", "Pull a Wasm OCI artifact from a registry, verify it, and write the .wasm.") { reference, output, json };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var source = ParseReference(parse.GetValue(reference)!);
            using var client = new OciRegistryClient();
            var content = await Registry(source, () => client.PullWasmAsync(source, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var path = Path.GetFullPath(parse.GetValue(output) ?? source.Repository[(source.Repository.LastIndexOf('/') + 1)..] + ".wasm");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllBytesAsync(path, content.Wasm, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject
                {
                    ["ok"] = true,
                    ["reference"] = source.ToString(),
                    ["digest"] = content.ManifestDigest,
                    ["kind"] = content.IsComponent ? "component" : "module",
                    ["size"] = content.Wasm.Length,
                    ["path"] = path,
                    ["annotations"] = new JsonObject([.. content.Annotations.Select(a => KeyValuePair.Create(a.Key, (JsonNode?)a.Value))]),
                });
            }
            else
            {
                context.Out.WriteLine($"pulled {source} ({content.Wasm.Length:N0} bytes, {(content.IsComponent ? "WASI 0.2 component" : "WASI preview 1 module")})");
                context.Out.WriteLine($"  digest    {content.ManifestDigest}");
                context.Out.WriteLine($"  wasm      {Packer.DisplayPath(path)}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    internal static OciReference ParseReference(string text)
    {
        try
        {
            return OciReference.Parse(text);
        }
        catch (FormatException ex)
        {
            throw new CliFailure(ExitCodes.Usage, "usage", ex.Message, "write a reference as HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/hello:1.0");
        }
    }

    private static bool HasTagOrDigest(string text)
    {
        var lastSlash = text.LastIndexOf('/');
        return text.Contains('@', StringComparison.Ordinal) || text.IndexOf(':', lastSlash + 1) >= 0;
    }

    /// <summary>Maps registry failures to exit codes: unreachable 4, any answer the registry refused 5, a bad artifact 2.</summary>
    internal static async Task<T> Registry<T>(OciReference reference, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (OciRegistryUnavailableException ex)
        {
            throw new CliFailure(ExitCodes.Unreachable, "registry_unreachable", ex.Message, $"check that the registry at {reference.Registry} is running and reachable");
        }
        catch (HttpRequestException ex)
        {
            throw new CliFailure(ExitCodes.Unreachable, "registry_unreachable", $"cannot reach the registry {reference.Registry}: {ex.Message}", $"check that the registry at {reference.Registry} is running and reachable");
        }
        catch (OciInvalidArtifactException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "invalid_artifact", ex.Message, "pull a Wasm artifact (config application/vnd.wasm.config.v0+json, one application/wasm layer), e.g. one pushed with warp push");
        }
        catch (OciDigestMismatchException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "digest_mismatch", ex.Message, "the registry served content that does not match its digest; do not use it");
        }
        catch (OciNotFoundException ex)
        {
            throw new CliFailure(ExitCodes.Rejected, "not_found", ex.Message, "check the repository and tag (warp push prints them)");
        }
        catch (OciAuthenticationException ex)
        {
            throw new CliFailure(ExitCodes.Rejected, "unauthorized", ex.Message, "the registry wants credentials; warp does not pass any yet");
        }
        catch (OciException ex)
        {
            var unreachable = ex.StatusCode is null or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
            throw new CliFailure(unreachable ? ExitCodes.Unreachable : ExitCodes.Rejected, unreachable ? "registry_unreachable" : "registry_rejected", ex.Message);
        }
    }
}
