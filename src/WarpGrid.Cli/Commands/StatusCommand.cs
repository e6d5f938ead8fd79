using System.CommandLine;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Node;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp status [name] [--node URL] [--json]</c>.</summary>
internal static class StatusCommand
{
    public static Command Create(CliContext context)
    {
        var name = CommandHelpers.NoOptionLikeValues(new Argument<string?>("name") { Description = "A deployment name; all deployments when omitted.", Arity = ArgumentArity.ZeroOrOne });
        var node = CommandHelpers.NodeOptions();
        var ns = CommandHelpers.NamespaceOption();
        ns.Description = "Only deployments of this namespace (default: every namespace the credential may list).";
        var json = CommandHelpers.JsonOption();
        var explain = new Option<bool>("--explain") { Description = "With a name, on a cluster control plane: where the instances are and every node's filter verdicts and scores for one more instance." };
        var command = new Command("status", "Show deployments on a node: name, version, status, route, instances, requests, faults; pending ones with why.") { name, ns, json, explain };
        node.AddTo(command);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            using var client = node.Connect(context, parse);
            var one = parse.GetValue(name);
            var only = parse.GetValue(ns) ?? Node.WarpConfig.Load(context).Current?.Namespace;
            using var request = new HttpRequestMessage(HttpMethod.Get, one is null ? "v1/deployments" + (only is null ? string.Empty : "?namespace=" + Uri.EscapeDataString(only)) : "v1/deployments/" + Uri.EscapeDataString(one));
            var (_, body) = await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var rows = one is null ? (body as JsonArray)?.OfType<JsonObject>().ToList() ?? [] : body is JsonObject single ? [single] : [];
            JsonNode? placement = null;
            if (parse.GetValue(explain))
            {
                if (one is null)
                {
                    throw new CliFailure(ExitCodes.Usage, "usage", "--explain needs a deployment name", "example: warp status hello --explain");
                }

                using var placementRequest = new HttpRequestMessage(HttpMethod.Get, "v1/deployments/" + Uri.EscapeDataString(one) + "/placement?explain=true");
                (_, placement) = await client.SendAsync(placementRequest, cancellationToken).ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                var document = new JsonObject { ["ok"] = true, ["node"] = client.BaseUri.ToString() };
                if (one is null)
                {
                    document["deployments"] = new JsonArray([.. rows.Select(r => (JsonNode)r.DeepClone())]);
                }
                else
                {
                    document["deployment"] = body?.DeepClone();
                }

                if (placement is not null)
                {
                    document["placement"] = placement.DeepClone();
                }

                context.WriteJson(document);
                return ExitCodes.Ok;
            }

            if (rows.Count == 0)
            {
                context.Out.WriteLine($"no deployments on {client.BaseUri} (deploy one with: warp deploy <dir>)");
                return ExitCodes.Ok;
            }

            string[] header = ["NAME", "VERSION", "STATUS", "ROUTE", "LIVE/BUSY", "REQUESTS", "FAULTS"];
            var table = rows.Select(r => new[]
            {
                r["name"]?.ToString() ?? "?",
                r["version"]?.ToString() ?? "?",
                r["status"]?.ToString() ?? "?",
                (r["host"]?.ToString() ?? string.Empty) + r["route"],
                r["instances"] is JsonObject i ? $"{i["live"]}/{i["busy"]}" : "-",
                r["instances"]?["requests"]?.ToString() ?? "-",
                r["instances"]?["faults"]?.ToString() ?? "-",
            }).ToList();
            WriteTable(context.Out, header, table);
            foreach (var r in rows.Where(r => r["message"] is not null))
            {
                context.Out.WriteLine($"{r["name"]}: {r["message"]}");
            }

            if (placement is not null)
            {
                WriteExplanation(context.Out, placement);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static void WriteExplanation(TextWriter output, JsonNode placement)
    {
        var nodes = placement["nodes"] is JsonObject n && n.Count > 0 ? string.Join(", ", n.Select(p => $"{p.Key}: {p.Value}")) : "none";
        output.WriteLine();
        output.WriteLine($"placement: {placement["placed"]}/{placement["desired"]} placed ({nodes})" + (placement["pending"] is { } pending ? $"; pending: {pending}" : string.Empty));
        if (placement["constraints"] is { } constraints)
        {
            output.WriteLine($"constraints: {constraints}");
        }
        if (placement["explain"]?["nodes"] is not JsonArray explained)
        {
            return;
        }

        output.WriteLine($"next instance would go to: {placement["explain"]?["chosen"]?.ToString() ?? "no node"}");
        var rows = explained.OfType<JsonObject>().Select(e =>
        {
            var failed = e["filters"]?.AsArray().OfType<JsonObject>().Where(f => f["passed"]?.GetValue<bool>() == false).Select(f => $"{f["plugin"]}: {f["reason"]}").ToList() ?? [];
            var scores = e["scores"]?.AsArray().OfType<JsonObject>().Select(s => $"{s["plugin"]}={s["score"]}x{s["weight"]}").ToList() ?? [];
            return new[]
            {
                e["node"]?.ToString() ?? "?",
                e["feasible"]?.GetValue<bool>() == true ? "yes" : "no",
                e["totalScore"]?.ToString() ?? "-",
                failed.Count > 0 ? string.Join("; ", failed) : string.Join(" ", scores),
            };
        }).ToList();
        WriteTable(output, ["NODE", "FITS", "SCORE", "WHY"], rows);
    }

    internal static void WriteTable(TextWriter output, string[] header, IReadOnlyList<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        output.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        }
    }
}
