using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using WarpGrid.Cli.Build;
using WarpGrid.Cli.Node;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Oci;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp deploy &lt;dir|reference&gt; [--node URL] [--manifest FILE] [--json]</c>.</summary>
internal static partial class DeployCommand
{
    public static Command Create(CliContext context)
    {
        var target = CommandHelpers.NoOptionLikeValues(new Argument<string>("target") { Description = "A package directory (packed first when its output is missing or stale), or an OCI reference such as 127.0.0.1:5000/hello:1.0 that the node pulls." });
        var node = CommandHelpers.NodeOptions();
        var manifestOption = new Option<string?>("--manifest") { Description = "With a reference: the warp.toml to send (default ./warp.toml, else a default manifest named after the repository).", HelpName = "FILE" };
        var ns = CommandHelpers.NamespaceOption();
        ns.Description = "The namespace to deploy into; it must match the manifest's [package] namespace (which decides it; default 'default').";
        var json = CommandHelpers.JsonOption();
        var credentials = new RegistryCredentialOptions();
        var command = new Command("deploy", "Create or update a deployment on a node (PUT /v1/deployments/{name}). A reference is pulled by the node with its own registry credentials; with --username/--password-stdin, warp pulls it with those and uploads the module instead.") { target, manifestOption, ns, json };
        node.AddTo(command);
        credentials.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var value = parse.GetValue(target)!;
            var credential = await credentials.ReadAsync(context, parse, cancellationToken).ConfigureAwait(false);
            using var client = node.Connect(context, parse);
            string name;
            string manifestForNamespace;
            MultipartFormDataContent form;
            PackResult? pack = null;
            string? pulledDigest = null;
            var isDirectory = Directory.Exists(value) || (File.Exists(value) && Path.GetFileName(value) == ManifestParser.DefaultFileName);
            if (isDirectory)
            {
                pack = await Packer.PackAsync(context, value, null, null, BuildPolicy.IfStale, cancellationToken).ConfigureAwait(false);
                name = pack.Manifest.Package.Name;
                manifestForNamespace = pack.ManifestText;
                if (!parse.GetValue(json))
                {
                    PackCommand.WriteHuman(context, pack);
                }

                form = new MultipartFormDataContent
                {
                    { Text(pack.ManifestText, "application/toml"), "manifest", ManifestParser.DefaultFileName },
                    { Bytes(pack.Wasm, "application/wasm"), "module", Path.GetFileName(pack.WasmPath) },
                };
            }
            else if (ReferenceRegex().IsMatch(value))
            {
                (name, var manifestText) = await ManifestForReferenceAsync(value, parse.GetValue(manifestOption), cancellationToken).ConfigureAwait(false);
                manifestForNamespace = manifestText;
                if (credential is null)
                {
                    form = new MultipartFormDataContent
                    {
                        { Text(manifestText, "application/toml"), "manifest", ManifestParser.DefaultFileName },
                        { new StringContent(value, Encoding.UTF8), "reference" },
                    };
                }
                else
                {
                    // The credentials are the caller's, not the node's: pull here and hand the node the verified module.
                    if (!OciReference.TryParse(value, out var reference, out var referenceError))
                    {
                        throw new CliFailure(ExitCodes.Usage, "usage", referenceError, "write a reference as HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/hello:1.0");
                    }

                    using var registry = RegistryClientFactory.Create(context, reference.Registry, credential);
                    var artifact = await RegistryClientFactory.CallAsync(reference.Registry, () => registry.PullWasmAsync(reference, cancellationToken: cancellationToken)).ConfigureAwait(false);
                    pulledDigest = artifact.ManifestDigest;
                    if (!parse.GetValue(json))
                    {
                        context.Out.WriteLine($"pulled {reference} ({artifact.Wasm.Length:N0} bytes, {artifact.ManifestDigest}); uploading the module to the node");
                    }

                    form = new MultipartFormDataContent
                    {
                        { Text(manifestText, "application/toml"), "manifest", ManifestParser.DefaultFileName },
                        { Bytes(artifact.Wasm, "application/wasm"), "module", name + ".wasm" },
                    };
                }
            }
            else
            {
                throw new CliFailure(ExitCodes.Invalid, "not_found", $"'{value}' is neither a directory nor an OCI reference",
                    "pass a package directory (holding warp.toml) or a reference like 127.0.0.1:5000/hello:1.0");
            }

            using (form)
            {
                var target = DeploymentNamespace(manifestForNamespace, parse.GetValue(ns));
                using var request = new HttpRequestMessage(HttpMethod.Put, $"v1/deployments/{Uri.EscapeDataString(name)}?namespace={Uri.EscapeDataString(target)}") { Content = form };
                var (status, body) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
                var created = status == HttpStatusCode.Created;
                if (parse.GetValue(json))
                {
                    context.WriteJson(new JsonObject
                    {
                        ["ok"] = true,
                        ["node"] = client.BaseUri.ToString(),
                        ["created"] = created,
                        ["reference"] = isDirectory ? null : value,
                        ["pulledManifestDigest"] = pulledDigest,
                        ["pack"] = pack is null ? null : PackCommand.ToJson(pack),
                        ["deployment"] = body?.DeepClone(),
                    });
                }
                else
                {
                    var d = body as JsonObject;
                    context.Out.WriteLine($"{(created ? "created" : "updated")} deployment {name} {d?["version"]} on {client.BaseUri} (revision {d?["revision"]}): {d?["status"]}");
                    context.Out.WriteLine($"  route     {d?["host"]?.ToString() ?? string.Empty}{d?["route"]}");
                    context.Out.WriteLine($"  digest    {d?["digest"]}");
                    if (d?["message"] is { } message)
                    {
                        context.Out.WriteLine($"  message   {message}");
                    }
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// The namespace the manifest's <c>[package] namespace</c> names (else <c>default</c>), sent as <c>?namespace=</c> for
    /// the authorization of a new deployment. A <c>--namespace</c> flag must agree with the manifest.
    /// </summary>
    internal static string DeploymentNamespace(string manifestText, string? flag)
    {
        var declared = DeclaredNamespace(manifestText);
        if (flag is null)
        {
            return declared ?? PackageSection.DefaultNamespace;
        }

        if (declared is null)
        {
            throw new CliFailure(ExitCodes.Usage, "usage", $"--namespace {flag} given but the manifest names no namespace",
                $"set it in warp.toml: [package] namespace = \"{flag}\" (the manifest decides the namespace; --namespace only checks it)");
        }

        if (!string.Equals(declared, flag, StringComparison.Ordinal))
        {
            throw new CliFailure(ExitCodes.Usage, "usage", $"--namespace {flag} does not match the manifest's [package] namespace '{declared}'",
                $"drop --namespace, or change [package] namespace in warp.toml to \"{flag}\"");
        }

        return declared;
    }

    private static string? DeclaredNamespace(string manifestText)
    {
        var document = Tomlyn.Parsing.SyntaxParser.Parse(manifestText, ManifestParser.DefaultFileName, validate: false);
        var package = document.Tables.OfType<Tomlyn.Syntax.TableSyntax>().FirstOrDefault(t => t.Name?.Key is Tomlyn.Syntax.BareKeySyntax { Key.Text: "package" } && t.Name.DotKeys.ChildrenCount == 0);
        var entry = package?.Items.FirstOrDefault(i => i.Key?.Key is Tomlyn.Syntax.BareKeySyntax { Key.Text: "namespace" } && i.Key.DotKeys.ChildrenCount == 0);
        return entry?.Value is Tomlyn.Syntax.StringValueSyntax { Value: { } value } ? value : null;
    }

    private static async Task<(string Name, string Manifest)> ManifestForReferenceAsync(string reference, string? manifestOption, CancellationToken cancellationToken)
    {
        var path = manifestOption ?? (File.Exists(ManifestParser.DefaultFileName) ? ManifestParser.DefaultFileName : null);
        if (path is not null)
        {
            if (!File.Exists(path))
            {
                throw new CliFailure(ExitCodes.Invalid, "manifest_missing", $"{path} does not exist", "pass --manifest with the warp.toml to deploy the reference with");
            }

            var text = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
            var parsed = ManifestParser.Parse(text, path);
            if (!parsed.Success)
            {
                throw new CliFailure(ExitCodes.Invalid, "manifest_invalid", $"{path} has {parsed.Errors.Count} error(s)", "fix them and deploy again",
                    [.. parsed.Errors.Select(e => new ErrorItem(e.Message, e.Field, e.File, e.Line, e.Column))]);
            }

            return (parsed.Manifest!.Package.Name, text);
        }

        // No manifest: every default, named after the last repository segment (127.0.0.1:5000/team/hello:1.0 -> hello).
        var match = ReferenceRegex().Match(reference);
        var repository = match.Groups["repo"].Value;
        var name = repository[(repository.LastIndexOf('/') + 1)..];
        if (!ManifestRulesProxy.IsValidName(name))
        {
            throw new CliFailure(ExitCodes.Invalid, "manifest_missing", $"no warp.toml here and '{name}' is not a valid deployment name", "pass --manifest FILE");
        }

        var manifest = WarpManifest.CreateDefault(name);
        var tag = match.Groups["tag"].Success ? match.Groups["tag"].Value : null;
        if (tag is not null && SemverRegex().IsMatch(tag))
        {
            manifest = manifest with { Package = manifest.Package with { Version = tag } };
        }

        return (name, ManifestWriter.ToToml(manifest));
    }

    private static ByteArrayContent Bytes(byte[] bytes, string mediaType)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return content;
    }

    private static StringContent Text(string text, string mediaType) => new(text, Encoding.UTF8, mediaType);

    /// <summary>registry[:port]/repository[:tag][@sha256:hex] with a registry host (has a dot, a port, or is localhost).</summary>
    [GeneratedRegex(@"^(?<registry>(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|\[[0-9a-fA-F:]+\])(?::\d+)?|[a-zA-Z0-9-]+:\d+)/(?<repo>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$")]
    private static partial Regex ReferenceRegex();

    [GeneratedRegex(@"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")]
    private static partial Regex SemverRegex();

    private static class ManifestRulesProxy
    {
        public static bool IsValidName(string name)
        {
            try
            {
                WarpManifest.CreateDefault(name);
                return true;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }
    }
}
