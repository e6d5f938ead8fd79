using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Node;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp logs &lt;deployment&gt; [-f] [--tail N] [--node URL] [--json]</c>.</summary>
internal static class LogsCommand
{
    public static Command Create(CliContext context)
    {
        var name = CommandHelpers.NoOptionLikeValues(new Argument<string>("deployment") { Description = "The deployment whose logs to show." });
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep the connection open and print new records as the guest writes them (Ctrl+C stops)." };
        var tail = new Option<int>("--tail") { Description = "How many of the newest records to print first (default 100).", DefaultValueFactory = _ => 100, HelpName = "N" };
        var node = CommandHelpers.NodeOptions();
        var json = CommandHelpers.JsonOption();
        json.Description = "Print the records as NDJSON (one JSON object a line), as the node sends them.";
        var command = new Command("logs", "Show a deployment's logs: guest stderr lines and the node's records about it (probes, restarts, scaling).") { name, follow, tail, json };
        node.AddTo(command);
        tail.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 0)
            {
                result.AddError("--tail must be 0 or more");
            }
        });
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            using var client = node.Connect(context, parse);
            var path = $"v1/deployments/{Uri.EscapeDataString(parse.GetValue(name)!)}/logs?tail={parse.GetValue(tail).ToString(CultureInfo.InvariantCulture)}&follow={(parse.GetValue(follow) ? "true" : "false")}";
            var raw = parse.GetValue(json);
            try
            {
                await foreach (var line in client.StreamLinesAsync(path, cancellationToken).ConfigureAwait(false))
                {
                    context.Out.WriteLine(raw ? line : Format(line));
                    context.Out.Flush();
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Ctrl+C ends a follow
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>One record as a line: time, instance (or <c>node</c>), level and [context] for log-import records, message.</summary>
    internal static string Format(string line)
    {
        try
        {
            var record = JsonNode.Parse(line)?.AsObject();
            if (record is null)
            {
                return line;
            }

            var time = DateTimeOffset.TryParse((string?)record["timestamp"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var at)
                ? at.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)
                : "?";
            var source = (string?)record["instance"] ?? "node";
            var level = (string?)record["level"] is { } l ? l.ToUpperInvariant() + " " : "";
            var context = (string?)record["context"] is { } c ? "[" + c + "] " : "";
            return $"{time} {source} {level}{context}{(string?)record["message"]}";
        }
        catch (JsonException)
        {
            return line;
        }
    }
}
