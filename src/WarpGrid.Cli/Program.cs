using WarpGrid.Cli;

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancellation.Cancel();
};
return await WarpCli.RunAsync(args, CliContext.FromConsole(), cancellation.Token);
