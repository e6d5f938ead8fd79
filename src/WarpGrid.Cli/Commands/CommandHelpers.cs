using System.CommandLine;

namespace WarpGrid.Cli.Commands;

internal static class CommandHelpers
{
    public static Option<bool> JsonOption() => new("--json") { Description = "Write one JSON document to standard output (errors too); for scripts." };

    public static Option<string?> NodeOption() => new("--node") { Description = "The node's API URL (default $WARP_NODE, else http://127.0.0.1:9090).", HelpName = "URL" };

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
