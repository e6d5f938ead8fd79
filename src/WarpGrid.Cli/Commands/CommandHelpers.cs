using System.CommandLine;
using WarpGrid.Cli.Node;

namespace WarpGrid.Cli.Commands;

internal static class CommandHelpers
{
    public static Option<bool> JsonOption() => new("--json") { Description = "Write one JSON document to standard output (errors too); for scripts." };

    public static Option<string?> NodeOption() => new("--node") { Description = "The node's API URL (default $WARP_NODE, else http://127.0.0.1:9090).", HelpName = "URL" };

    /// <summary>The node options every command that calls a node takes: <c>--node</c>, <c>--token</c>, <c>--ca-file</c>.</summary>
    public static NodeOptions NodeOptions() => new();

    /// <summary><c>--namespace/-n</c>; its default is the current context's namespace, else <c>default</c> (see <see cref="NodeOptions.Namespace"/>).</summary>
    public static Option<string?> NamespaceOption() => new("--namespace", "-n") { Description = "The namespace (default: the current context's namespace, else 'default').", HelpName = "NAMESPACE" };

    /// <summary>An optional positional argument swallows unknown options (<c>warp pack --bogus</c>): reject those as usage errors.</summary>
    public static T NoOptionLikeValues<T>(T argument)
        where T : Argument
    {
        argument.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (token.Value.StartsWith('-') && token.Value.Length > 1)
                {
                    result.AddError($"Unrecognized command or argument '{token.Value}'.");
                }
            }
        });
        return argument;
    }

    /// <summary>Runs a command body, turning <see cref="CliFailure"/> into its report and exit code.</summary>
    public static void SetAction(Command command, CliContext context, Option<bool> json, Func<ParseResult, CancellationToken, Task<int>> body)
    {
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await body(parse, cancellationToken).ConfigureAwait(false);
            }
            catch (CliFailure failure)
            {
                context.Report(failure, parse.GetValue(json));
                return failure.ExitCode;
            }
        });
    }
}

/// <summary><c>--node</c>, <c>--token</c> and <c>--ca-file</c>, added together to a command and read into a <see cref="NodeClient"/>.</summary>
internal sealed class NodeOptions
{
    public Option<string?> Node { get; } = CommandHelpers.NodeOption();

    public Option<string?> Token { get; } = new("--token")
    {
        Description = "A service-account token for the node (default $WARP_TOKEN, else the current context's credential, else on loopback the node's bootstrap admin token).",
        HelpName = "TOKEN",
    };

    public Option<string?> CaFile { get; } = new("--ca-file")
    {
        Description = "For an https node: the only CA (PEM) its certificate may chain to (default $WARP_CA_FILE, else the current context's certificate-authority).",
        HelpName = "FILE",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Node);
        command.Options.Add(Token);
        command.Options.Add(CaFile);
    }

    public NodeClient Connect(CliContext context, ParseResult parse) =>
        NodeClient.Create(context, new NodeTarget(parse.GetValue(Node), parse.GetValue(Token), parse.GetValue(CaFile)));

    /// <summary>The namespace: <paramref name="option"/>'s value, else the current context's, else <c>default</c>.</summary>
    public static string Namespace(CliContext context, ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) ?? WarpConfig.Load(context).Current?.Namespace ?? "default";
}
