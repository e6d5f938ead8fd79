using System.CommandLine;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Node;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp login</c> and <c>warp config use-context|get-contexts|current-context</c>: the contexts of the warp configuration.</summary>
internal static class LoginCommand
{
    public static Command Create(CliContext context)
    {
        var node = new Option<string>("--node") { Description = "The node's API URL.", HelpName = "URL", Required = true };
        var tokenStdin = new Option<bool>("--token-stdin") { Description = "Read the token from standard input (keeps it out of the shell history and the process list)." };
        var token = new Option<string?>("--token") { Description = "The service-account token (prefer --token-stdin).", HelpName = "TOKEN" };
        var certificate = new Option<string?>("--client-certificate") { Description = "A client certificate (PEM) of the cluster CA, e.g. from warp certificate request.", HelpName = "FILE" };
        var key = new Option<string?>("--client-key") { Description = "The client certificate's private key (PEM).", HelpName = "FILE" };
        var caFile = new Option<string?>("--ca-file") { Description = "For an https node: the CA (PEM) its certificate must chain to.", HelpName = "FILE" };
        var name = new Option<string?>("--context") { Description = "The context's name (default: the node's host-port).", HelpName = "NAME" };
        var ns = CommandHelpers.NamespaceOption();
        ns.Description = "The context's default namespace for namespaced commands.";
        var json = CommandHelpers.JsonOption();
        var command = new Command("login", "Check a credential against a node (GET /v1/auth/whoami), then save it as a context of the warp configuration and make that context current.")
        {
            node, tokenStdin, token, certificate, key, caFile, name, ns, json,
        };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var secret = parse.GetValue(token);
            if (parse.GetValue(tokenStdin))
            {
                if (secret is not null)
                {
                    throw Usage("pass either --token or --token-stdin, not both");
                }

                secret = (await context.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false)).Trim();
                if (secret.Length == 0)
                {
                    throw Usage("--token-stdin read nothing from standard input");
                }
            }

            var certificateFile = parse.GetValue(certificate) is { } c ? Path.GetFullPath(c) : null;
            var keyFile = parse.GetValue(key) is { } k ? Path.GetFullPath(k) : null;
            if ((certificateFile is null) != (keyFile is null))
            {
                throw Usage("--client-certificate and --client-key go together");
            }

            if (secret is null && certificateFile is null)
            {
                throw Usage("no credential given");
            }

            var ca = parse.GetValue(caFile) is { } f ? Path.GetFullPath(f) : null;
            var nodeUrl = parse.GetValue(node)!;
            JsonNode? whoami;
            Uri baseUri;
            using (var client = NodeClient.Create(context, new NodeTarget(nodeUrl, secret, ca, certificateFile, keyFile), useConfig: false))
            {
                baseUri = client.BaseUri;
                using var request = new HttpRequestMessage(HttpMethod.Get, "v1/auth/whoami");
                (_, whoami) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }

            var config = WarpConfig.Load(context);
            var contextName = parse.GetValue(name) ?? $"{baseUri.Host}-{baseUri.Port}".Replace(':', '-');
            config.Put(new WarpContext(contextName)
            {
                Node = baseUri.GetLeftPart(UriPartial.Authority),
                Token = secret,
                Namespace = parse.GetValue(ns) ?? config.Find(contextName)?.Namespace,
                ClientCertificate = certificateFile,
                ClientKey = keyFile,
                CertificateAuthority = ca,
            });
            config.CurrentContext = contextName;
            config.Save();
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["context"] = contextName, ["config"] = config.Path, ["whoami"] = whoami?.DeepClone() });
            }
            else
            {
                context.Out.WriteLine($"logged in to {baseUri.GetLeftPart(UriPartial.Authority)} as {whoami?["subject"]}; context '{contextName}' saved in {config.Path} and made current");
            }

            return ExitCodes.Ok;
        });
        return command;

        static CliFailure Usage(string message) =>
            new(ExitCodes.Usage, "usage", message, "warp login --node URL (--token-stdin | --token TOKEN | --client-certificate FILE --client-key FILE) [--ca-file FILE] [--context NAME]");
    }

    public static Command CreateConfig(CliContext context)
    {
        var config = new Command("config", "The contexts of the warp configuration ($WARP_CONFIG, else $XDG_CONFIG_HOME/warp/config.toml, else ~/.config/warp/config.toml).");

        var useName = new Argument<string>("name") { Description = "The context to make current." };
        var useJson = CommandHelpers.JsonOption();
        var use = new Command("use-context", "Make a context current.") { useName, useJson };
        CommandHelpers.SetAction(use, context, useJson, (parse, _) =>
        {
            var file = WarpConfig.Load(context);
            var wanted = parse.GetValue(useName)!;
            if (file.Find(wanted) is null)
            {
                throw new CliFailure(ExitCodes.Usage, "no_such_context", $"no context '{wanted}' in {file.Path}",
                    file.Contexts.Count == 0 ? "create one with: warp login --node URL --token-stdin" : "contexts: " + string.Join(", ", file.Contexts.Select(c => c.Name)));
            }

            file.CurrentContext = wanted;
            file.Save();
            if (parse.GetValue(useJson))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["currentContext"] = wanted });
            }
            else
            {
                context.Out.WriteLine($"switched to context '{wanted}'");
            }

            return Task.FromResult(ExitCodes.Ok);
        });

        var listJson = CommandHelpers.JsonOption();
        var list = new Command("get-contexts", "List the contexts: name, node, credential kind, namespace; * marks the current one (tokens are never shown).") { listJson };
        CommandHelpers.SetAction(list, context, listJson, (parse, _) =>
        {
            var file = WarpConfig.Load(context);
            if (parse.GetValue(listJson))
            {
                context.WriteJson(new JsonObject
                {
                    ["ok"] = true,
                    ["config"] = file.Path,
                    ["currentContext"] = file.CurrentContext,
                    ["contexts"] = new JsonArray([.. file.Contexts.Select(c => (JsonNode)new JsonObject
                    {
                        ["name"] = c.Name,
                        ["current"] = c.Name == file.CurrentContext,
                        ["node"] = c.Node,
                        ["credential"] = Credential(c),
                        ["namespace"] = c.Namespace,
                        ["certificateAuthority"] = c.CertificateAuthority,
                    })]),
                });
                return Task.FromResult(ExitCodes.Ok);
            }

            if (file.Contexts.Count == 0)
            {
                context.Out.WriteLine($"no contexts in {file.Path} (create one with: warp login --node URL --token-stdin)");
                return Task.FromResult(ExitCodes.Ok);
            }

            StatusCommand.WriteTable(context.Out, ["CURRENT", "NAME", "NODE", "CREDENTIAL", "NAMESPACE"],
                [.. file.Contexts.Select(c => new[] { c.Name == file.CurrentContext ? "*" : string.Empty, c.Name, c.Node ?? "-", Credential(c), c.Namespace ?? "-" })]);
            return Task.FromResult(ExitCodes.Ok);
        });

        var currentJson = CommandHelpers.JsonOption();
        var current = new Command("current-context", "Print the current context's name.") { currentJson };
        CommandHelpers.SetAction(current, context, currentJson, (parse, _) =>
        {
            var file = WarpConfig.Load(context);
            if (file.Current is null)
            {
                throw new CliFailure(ExitCodes.Usage, "no_current_context", $"no current context in {file.Path}", "log in with: warp login --node URL --token-stdin, or pick one with: warp config use-context NAME");
            }

            if (parse.GetValue(currentJson))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["currentContext"] = file.CurrentContext, ["node"] = file.Current.Node, ["namespace"] = file.Current.Namespace });
            }
            else
            {
                context.Out.WriteLine(file.CurrentContext);
            }

            return Task.FromResult(ExitCodes.Ok);
        });

        config.Subcommands.Add(use);
        config.Subcommands.Add(list);
        config.Subcommands.Add(current);
        return config;
    }

    private static string Credential(WarpContext c) => c.Token is not null ? "token" : c.ClientCertificate is not null ? "client-certificate" : "none";
}
