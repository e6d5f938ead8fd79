using System.CommandLine;
using WarpGrid.Cli.Commands;

namespace WarpGrid.Cli;

/// <summary>The <c>warp</c> command line: builds the command tree and runs it against a <see cref="CliContext"/>.</summary>
public static class WarpCli
{
    /// <summary>Runs <c>warp</c> with <paramref name="args"/>; returns the exit code (<see cref="ExitCodes"/>).</summary>
    /// <example><code>var code = await WarpCli.RunAsync(["pack", "samples/hello", "--json"], new CliContext(stdout, stderr));</code></example>
    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        var root = CreateRootCommand(context);
        var parse = root.Parse(args);
        var configuration = new InvocationConfiguration { Output = context.Out, Error = context.Err };
        return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The command tree.</summary>
    public static RootCommand CreateRootCommand(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new RootCommand("warp: pack WebAssembly workloads from source, deploy them to WarpGrid nodes, and watch them run. Exit codes: 0 ok, 1 usage, 2 invalid input, 3 toolchain missing, 4 node or registry unreachable, 5 node or registry rejected the request.")
        {
            PackCommand.Create(context),
            DeployCommand.Create(context),
            StatusCommand.Create(context),
            NodesCommand.Create(context),
            NodesCommand.CreateTokens(context),
            LogsCommand.Create(context),
            ToolchainCommand.Create(context),
            RegistryCommands.CreatePush(context),
            RegistryCommands.CreatePull(context),
            RegistryCommands.CreateRegistry(context),
            SigningCommands.CreateSign(context),
            SigningCommands.CreateVerify(context),
            SigningCommands.CreateKeys(context),
            LoginCommand.Create(context),
            LoginCommand.CreateConfig(context),
            AuthCommands.CreateAuth(context),
            AuthCommands.CreateNamespaces(context),
            AuthCommands.CreateServiceAccounts(context),
            AuthCommands.CreateRoleBindings(context),
            AuthCommands.CreateRoles(context),
            AuthCommands.CreateCertificate(context),
            AuthCommands.CreateAudit(context),
        };
    }
}
