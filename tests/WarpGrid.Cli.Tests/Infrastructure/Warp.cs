using System.Text.Json;

namespace WarpGrid.Cli.Tests.Infrastructure;

/// <summary>The outcome of one <c>warp</c> run.</summary>
internal sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    public JsonElement Json
    {
        get
        {
            using var document = JsonDocument.Parse(Stdout);
            return document.RootElement.Clone();
        }
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Runs the real <c>warp</c> entry point in-process with captured output.</summary>
internal static class Warp
{
    /// <summary>A configuration file that does not exist: runs see no context unless a test passes its own WARP_CONFIG.</summary>
    public static string NoConfig { get; } = Path.Combine(Path.GetTempPath(), "warp-cli-tests-" + Guid.NewGuid().ToString("N"), "config.toml");

    public static async Task<CliRun> RunAsync(params string[] args) => await RunAsync(null, args).ConfigureAwait(false);

    public static Task<CliRun> RunAsync(IReadOnlyDictionary<string, string?>? environment, params string[] args) => RunWithInputAsync(null, environment, args);

    /// <summary>Runs with <paramref name="input"/> as standard input (for --password-stdin).</summary>
    public static async Task<CliRun> RunWithInputAsync(string? input, IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal) { ["WARP_TOOLS"] = Repo.Tools, ["WARP_NODE"] = null, ["WARP_TOKEN"] = null, ["WARP_CA_FILE"] = null, ["WARP_CONFIG"] = NoConfig };
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                env[key] = value;
            }
        }

        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        using var stdin = new StringReader(input ?? string.Empty);
        var code = await WarpCli.RunAsync(args, new CliContext(stdout, stderr, env, input: stdin)).ConfigureAwait(false);
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }
}
