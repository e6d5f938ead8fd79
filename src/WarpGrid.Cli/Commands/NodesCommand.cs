using System.CommandLine;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Node;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp nodes list|label|taint|cordon|uncordon|drain</c> and <c>warp tokens create|list</c> against a control plane.</summary>
internal static class NodesCommand
{
    public static Command Create(CliContext context)
    {
        var nodes = new Command("nodes", "List and manage the nodes of a cluster (talk to the control plane's API).");
        nodes.Subcommands.Add(List(context));
        nodes.Subcommands.Add(Label(context));
        nodes.Subcommands.Add(Taint(context));
        nodes.Subcommands.Add(Simple(context, "cordon", "Stop placing new instances on a node (it keeps what it runs; 'drain' moves them off)."));
        nodes.Subcommands.Add(Simple(context, "uncordon", "Let a node take new instances again (also ends a drain)."));
        nodes.Subcommands.Add(Simple(context, "drain", "Cordon a node and move its instances elsewhere; each replacement starts before the drained instance stops."));
        return nodes;
    }

    public static Command CreateTokens(CliContext context)
    {
        var tokens = new Command("tokens", "Join tokens for node agents (warpd --agent --join URL --token TOKEN).");
        var ttl = new Option<string?>("--ttl") { Description = "How long the token is accepted, e.g. 1h or 30m (default: the control plane's WarpGrid:Cluster:TokenLifetime).", HelpName = "DURATION" };
        var description = new Option<string?>("--description") { Description = "A note kept with the token." };
        var uses = new Option<int?>("--uses") { Description = "How many joins the token allows (default: any number until it expires).", HelpName = "N" };
        var node = CommandHelpers.NodeOptions();
        var json = CommandHelpers.JsonOption();
        var create = new Command("create", "Create a join token and print it (shown only now).") { ttl, description, uses, json };
        node.AddTo(create);
        CommandHelpers.SetAction(create, context, json, async (parse, cancellationToken) =>
        {
            using var client = node.Connect(context, parse);
            var body = new JsonObject();
            if (parse.GetValue(ttl) is { } t)
            {
                body["ttl"] = t;
            }

            if (parse.GetValue(description) is { } d)
            {
                body["description"] = d;
            }

            if (parse.GetValue(uses) is { } n)
            {
                body["uses"] = n;
            }

            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/tokens") { Content = JsonContent.Create(body) };
            var (_, result) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["token"] = result?.DeepClone() });
                return ExitCodes.Ok;
            }

            context.Out.WriteLine(result?["token"]?.ToString());
            context.Err.WriteLine($"token {result?["id"]}, valid until {result?["expiresAt"]}{(result?["usesRemaining"] is { } left ? $" for {left} join(s)" : string.Empty)}; join with: warpd --agent --join https://<control-plane>:<cluster-port> --token <token>");
            return ExitCodes.Ok;
        });
        var listNode = CommandHelpers.NodeOptions();
        var listJson = CommandHelpers.JsonOption();
        var list = new Command("list", "List join tokens (ids and expiry; secrets are never shown again).") { listJson };
        listNode.AddTo(list);
        CommandHelpers.SetAction(list, context, listJson, async (parse, cancellationToken) =>
        {
            using var client = listNode.Connect(context, parse);
            using var request = new HttpRequestMessage(HttpMethod.Get, "v1/tokens");
            var (_, result) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var rows = (result as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
            if (parse.GetValue(listJson))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["tokens"] = result?.DeepClone() });
                return ExitCodes.Ok;
            }

            StatusCommand.WriteTable(context.Out, ["ID", "EXPIRES", "USES LEFT", "DESCRIPTION"], [.. rows.Select(r => new[] { r["id"]?.ToString() ?? "?", r["expiresAt"]?.ToString() ?? "?", r["usesRemaining"]?.ToString() ?? "any", r["description"]?.ToString() ?? string.Empty })]);
            return ExitCodes.Ok;
        });
        var revokeId = new Argument<string>("id") { Description = "The token's id (from warp tokens list)." };
        var revoke = AuthCommands.Leaf(context, "revoke", "Revoke a join token: no node joins with it any more.", [revokeId], async (call, parse, cancellationToken) =>
        {
            await call.SendAsync(HttpMethod.Delete, "v1/tokens/" + Uri.EscapeDataString(parse.GetValue(revokeId)!), null, cancellationToken).ConfigureAwait(false);
            return call.Emit("revoked", JsonValue.Create(parse.GetValue(revokeId)), () => call.Out.WriteLine($"revoked join token {parse.GetValue(revokeId)}"));
        });
        tokens.Subcommands.Add(create);
        tokens.Subcommands.Add(list);
        tokens.Subcommands.Add(revoke);
        return tokens;
    }

    private static Command List(CliContext context)
    {
        var node = CommandHelpers.NodeOptions();
        var json = CommandHelpers.JsonOption();
        var command = new Command("list", "Nodes with status (ready, not_ready, lost), scheduling state, capacity, allocation and labels.") { json };
        node.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            using var client = node.Connect(context, parse);
            using var request = new HttpRequestMessage(HttpMethod.Get, "v1/nodes");
            var (_, body) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var rows = (body as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject { ["ok"] = true, ["nodes"] = body?.DeepClone() });
                return ExitCodes.Ok;
            }

            if (rows.Count == 0)
            {
                context.Out.WriteLine("no nodes have joined yet (create a token with: warp tokens create)");
                return ExitCodes.Ok;
            }

            string[] header = ["NAME", "STATUS", "SCHEDULING", "INSTANCES", "MEMORY", "CPU", "LABELS", "TAINTS"];
            var table = rows.Select(r => new[]
            {
                r["name"]?.ToString() ?? "?",
                r["status"]?.ToString() ?? "?",
                r["draining"]?.GetValue<bool>() == true ? "draining" : r["cordoned"]?.GetValue<bool>() == true ? "cordoned" : "schedulable",
                $"{r["allocated"]?["instances"]}/{r["capacity"]?["instanceSlots"]}",
                $"{Mib(r["allocated"]?["memoryBytes"])}/{Mib(r["capacity"]?["memoryBytes"])}",
                $"{r["allocated"]?["cpuWeight"] ?? 0}/{r["capacity"]?["cpuWeight"]}",
                r["labels"] is JsonObject labels && labels.Count > 0 ? string.Join(",", labels.Select(p => $"{p.Key}={p.Value}")) : "-",
                r["taints"] is JsonArray taints && taints.Count > 0 ? string.Join(",", taints.Select(t => t?.ToString())) : "-",
            }).ToList();
            StatusCommand.WriteTable(context.Out, header, table);
            foreach (var r in rows.Where(r => r["statusReason"] is not null && r["status"]?.ToString() != "ready"))
            {
                context.Out.WriteLine($"{r["name"]}: {r["statusReason"]}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static string Mib(JsonNode? bytes) => bytes is JsonValue v && v.TryGetValue<long>(out var b) ? $"{b >> 20}Mi" : "0Mi";

    private static Command Label(CliContext context)
    {
        var name = new Argument<string>("name") { Description = "The node." };
        var labels = new Argument<string[]>("labels") { Description = "key=value to set, key- to remove.", Arity = ArgumentArity.OneOrMore };
        var node = CommandHelpers.NodeOptions();
        var json = CommandHelpers.JsonOption();
        var command = new Command("label", "Set (key=value) or remove (key-) node labels.") { name, labels, json };
        node.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var set = new JsonObject();
            var remove = new JsonArray();
            foreach (var item in parse.GetValue(labels) ?? [])
            {
                if (item.EndsWith('-') && !item.Contains('=', StringComparison.Ordinal))
                {
                    remove.Add(item[..^1]);
                }
                else if (item.IndexOf('=', StringComparison.Ordinal) is > 0 and var eq)
                {
                    set[item[..eq]] = item[(eq + 1)..];
                }
                else
                {
                    throw new CliFailure(ExitCodes.Usage, "usage", $"'{item}' is neither key=value nor key-", "example: warp nodes label node-1 zone=eu-1 gpu-");
                }
            }

            return await PostAsync(context, node.Connect(context, parse), parse.GetValue(json), $"v1/nodes/{Uri.EscapeDataString(parse.GetValue(name)!)}/labels", new JsonObject { ["labels"] = set, ["remove"] = remove }, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Taint(CliContext context)
    {
        var name = new Argument<string>("name") { Description = "The node." };
        var taints = new Argument<string[]>("taints") { Description = "key=value:Effect to add (NoSchedule, PreferNoSchedule, NoExecute), key- to remove.", Arity = ArgumentArity.OneOrMore };
        var node = CommandHelpers.NodeOptions();
        var json = CommandHelpers.JsonOption();
        var command = new Command("taint", "Add (key=value:Effect) or remove (key-) node taints.") { name, taints, json };
        node.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var add = new JsonArray();
            var remove = new JsonArray();
            foreach (var item in parse.GetValue(taints) ?? [])
            {
                if (item.EndsWith('-') && !item.Contains(':', StringComparison.Ordinal))
                {
                    remove.Add(item[..^1]);
                }
                else
                {
                    add.Add(item);
                }
            }

            return await PostAsync(context, node.Connect(context, parse), parse.GetValue(json), $"v1/nodes/{Uri.EscapeDataString(parse.GetValue(name)!)}/taints", new JsonObject { ["add"] = add, ["remove"] = remove }, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Simple(CliContext context, string verb, string description)
    {
        var name = new Argument<string>("name") { Description = "The node." };
        var node = CommandHelpers.NodeOptions();
        var json = CommandHelpers.JsonOption();
        var command = new Command(verb, description) { name, json };
        node.AddTo(command);
        CommandHelpers.SetAction(command, context, json, (parse, cancellationToken) =>
            PostAsync(context, node.Connect(context, parse), parse.GetValue(json), $"v1/nodes/{Uri.EscapeDataString(parse.GetValue(name)!)}/{verb}", null, cancellationToken));
        return command;
    }

    private static async Task<int> PostAsync(CliContext context, NodeClient connection, bool json, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        using var client = connection;
        using var request = new HttpRequestMessage(HttpMethod.Post, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        var (_, result) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (json)
        {
            context.WriteJson(new JsonObject { ["ok"] = true, ["node"] = result?.DeepClone() });
            return ExitCodes.Ok;
        }

        var state = result?["draining"]?.GetValue<bool>() == true ? "draining" : result?["cordoned"]?.GetValue<bool>() == true ? "cordoned" : "schedulable";
        var labels = result?["labels"] is JsonObject l && l.Count > 0 ? string.Join(",", l.Select(p => $"{p.Key}={p.Value}")) : "-";
        var taints = result?["taints"] is JsonArray t && t.Count > 0 ? string.Join(",", t.Select(x => x?.ToString())) : "-";
        context.Out.WriteLine($"{result?["name"]}: {result?["status"]}, {state}; labels {labels}; taints {taints}");
        if (state == "cordoned" && result?["allocated"]?["instances"]?.GetValue<int>() is > 0 and var kept)
        {
            // kubectl semantics: cordon only stops new placements. Say so, and how to move what runs.
            context.Out.WriteLine($"{result?["name"]} keeps its {kept} instance(s); 'warp nodes drain {result?["name"]}' moves them elsewhere (each replacement starts first)");
        }

        return ExitCodes.Ok;
    }
}
