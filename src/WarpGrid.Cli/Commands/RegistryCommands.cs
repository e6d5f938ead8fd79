using System.CommandLine;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Build;
using WarpGrid.Core.Oci;

namespace WarpGrid.Cli.Commands;

/// <summary>
/// <c>warp push &lt;reference&gt; [dir]</c>, <c>warp pull &lt;reference&gt; [--out FILE]</c> over <see cref="OciRegistryClient"/>,
/// and <c>warp registry login|logout HOST</c> over <see cref="DockerConfigCredentialProvider"/>.
/// </summary>
internal static class RegistryCommands
{
    public static Command CreatePush(CliContext context)
    {
        var reference = CommandHelpers.NoOptionLikeValues(new Argument<string>("reference") { Description = "Where to push, e.g. 127.0.0.1:5000/hello:1.0 (without a tag: the package version)." });
        var dir = CommandHelpers.NoOptionLikeValues(new Argument<string>("dir") { Description = "The package directory (packed first when its output is missing or stale).", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "." });
        var json = CommandHelpers.JsonOption();
        var credentials = new RegistryCredentialOptions();
        var command = new Command("push", "Pack the package (if needed) and push its Wasm OCI artifact to a registry; the digest is preserved. Credentials: --username/--password-stdin, else Docker's config.json.") { reference, dir, json };
        credentials.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var text = parse.GetValue(reference)!;
            var parsed = ParseReference(text); // usage errors before any build
            var credential = await credentials.ReadAsync(context, parse, cancellationToken).ConfigureAwait(false);
            var pack = await Packer.PackAsync(context, parse.GetValue(dir)!, null, null, BuildPolicy.IfStale, cancellationToken).ConfigureAwait(false);
            var target = ParseReference(HasTagOrDigest(text) ? text : text + ":" + pack.Tag);
            using var client = RegistryClientFactory.Create(context, parsed.Registry, credential);
            var digest = await RegistryClientFactory.CallAsync(target.Registry, () => client.PushAsync(pack.LayoutDirectory, pack.Tag, target, cancellationToken: cancellationToken)).ConfigureAwait(false);
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
        var credentials = new RegistryCredentialOptions();
        var command = new Command("pull", "Pull a Wasm OCI artifact from a registry, verify it, and write the .wasm. Credentials: --username/--password-stdin, else Docker's config.json.") { reference, output, json };
        credentials.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var source = ParseReference(parse.GetValue(reference)!);
            using var client = await RegistryClientFactory.CreateAsync(context, parse, credentials, source.Registry, cancellationToken).ConfigureAwait(false);
            var content = await RegistryClientFactory.CallAsync(source.Registry, () => client.PullWasmAsync(source, cancellationToken: cancellationToken)).ConfigureAwait(false);
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

    /// <summary><c>warp registry login HOST --username USER --password-stdin</c> and <c>warp registry logout HOST</c>.</summary>
    public static Command CreateRegistry(CliContext context)
    {
        var registry = new Command("registry", "Manage the registry credentials in Docker's config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), which warp push, pull and deploy use.");
        registry.Subcommands.Add(CreateLogin(context));
        registry.Subcommands.Add(CreateLogout(context));
        return registry;
    }

    private static Command CreateLogin(CliContext context)
    {
        var host = CommandHelpers.NoOptionLikeValues(new Argument<string>("host") { Description = "The registry, e.g. 127.0.0.1:5000, ghcr.io or docker.io." });
        var json = CommandHelpers.JsonOption();
        var credentials = new RegistryCredentialOptions();
        var command = new Command("login", "Check a user name and password (from standard input) against the registry's /v2/ endpoint, then save them in Docker's config.json (or its credsStore helper).") { host, json };
        credentials.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var server = RegistryHost(parse.GetValue(host)!);
            var credential = await credentials.ReadAsync(context, parse, cancellationToken).ConfigureAwait(false)
                ?? throw new CliFailure(ExitCodes.Usage, "usage", "warp registry login needs --username USER --password-stdin", "pipe the password in: echo \"$PASSWORD\" | warp registry login HOST --username USER --password-stdin");
            var apiHost = server == "docker.io" ? "registry-1.docker.io" : server;
            using (var client = new OciRegistryClient(new OciClientOptions { Credentials = { [apiHost] = credential } }))
            {
                await RegistryClientFactory.CallAsync(server, async () =>
                {
                    await client.CheckAuthenticationAsync(apiHost, cancellationToken).ConfigureAwait(false);
                    return true;
                }).ConfigureAwait(false);
            }

            var store = RegistryClientFactory.DockerConfig(context);
            var destination = await RegistryClientFactory.CallAsync(server, () => store.StoreAsync(server, credential, cancellationToken)).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["registry"] = server, ["username"] = credential.Username, ["config"] = store.ConfigPath, ["storedIn"] = destination });
            }
            else
            {
                context.Out.WriteLine($"login succeeded: {server} (user '{credential.Username}'), saved in {destination}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateLogout(CliContext context)
    {
        var host = CommandHelpers.NoOptionLikeValues(new Argument<string>("host") { Description = "The registry whose credentials to remove." });
        var json = CommandHelpers.JsonOption();
        var command = new Command("logout", "Remove the registry's credentials from Docker's config.json (and from its credential helper, when one is configured).") { host, json };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var server = RegistryHost(parse.GetValue(host)!);
            var store = RegistryClientFactory.DockerConfig(context);
            var removed = await RegistryClientFactory.CallAsync(server, () => store.EraseAsync(server, cancellationToken)).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["registry"] = server, ["removed"] = removed, ["config"] = store.ConfigPath });
            }
            else
            {
                context.Out.WriteLine(removed ? $"removed the credentials for {server} from {store.ConfigPath}" : $"no credentials for {server} were stored in {store.ConfigPath}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>host[:port] from HOST, https://HOST[:PORT][/path] or docker.io's aliases.</summary>
    private static string RegistryHost(string text)
    {
        var host = DockerConfigCredentialProvider.NormalizeRegistry(text);
        if (host.Length == 0 || host.Contains('@', StringComparison.Ordinal) || host.Any(char.IsWhiteSpace) || !Uri.TryCreate("http://" + host + "/", UriKind.Absolute, out var uri) || uri.Authority.Length == 0)
        {
            throw new CliFailure(ExitCodes.Usage, "usage", $"'{text}' is not a registry host", "name the registry as HOST[:PORT], e.g. 127.0.0.1:5000 or ghcr.io");
        }

        return host;
    }
}
