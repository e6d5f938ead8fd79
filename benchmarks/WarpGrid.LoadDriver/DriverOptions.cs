using System.Globalization;

namespace WarpGrid.LoadDriver;

/// <summary>Command-line settings of the driver. Every duration accepts <c>ms</c>, <c>s</c> or <c>m</c> suffixes.</summary>
internal sealed class DriverOptions
{
    public const string Usage = """
        WarpGrid.LoadDriver: end-to-end throughput of warpd against a plain ASP.NET Core app, and deploy-to-first-200 latency.

        Options (defaults in brackets):
          --repo <dir>              repository root [found by walking up to WarpGrid.sln]
          --warpd <dll>             [<repo>/src/WarpGrid.Daemon/bin/Release/net10.0/warpd.dll]
          --plain <dll>             [<repo>/benchmarks/PlainHello/bin/Release/net10.0/PlainHello.dll]
          --wrk <path>              wrk executable [wrk]
          --threads <n>             wrk -t [2]
          --connections <n>         wrk -c [32]
          --duration <time>         wrk -d of each measured run [10s]
          --warmup <time>           wrk run before each measured run, discarded [3s]
          --rounds <n>              warpd/plain pairs [3]
          --deploy-runs <n>         timed deploy-to-first-200 runs [20]
          --only <what>             throughput | deploy | plain [throughput and deploy]
                                    (plain: only the PlainHello rounds, to check the driver and the machine)
          --startup-timeout <time>  wait for a child to become ready [60s]
          --deploy-timeout <time>   wait for one deployment's first 200 [10s]
          --time-limit <time>       hard limit for the whole run; children are killed when it passes [20m]
          --json <file>             also write the results as JSON
          --keep-logs               keep child logs and data dirs (printed at the end)
        """;

    public string Repo { get; private set; } = string.Empty;

    public string WarpdDll { get; private set; } = string.Empty;

    public string PlainDll { get; private set; } = string.Empty;

    public string Wrk { get; private set; } = "wrk";

    public int Threads { get; private set; } = 2;

    public int Connections { get; private set; } = 32;

    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(10);

    public TimeSpan Warmup { get; private set; } = TimeSpan.FromSeconds(3);

    public int Rounds { get; private set; } = 3;

    public int DeployRuns { get; private set; } = 20;

    public bool RunThroughput { get; private set; } = true;

    public bool RunDeploy { get; private set; } = true;

    public bool PlainOnly { get; private set; }

    public TimeSpan StartupTimeout { get; private set; } = TimeSpan.FromSeconds(60);

    public TimeSpan DeployTimeout { get; private set; } = TimeSpan.FromSeconds(10);

    public TimeSpan TimeLimit { get; private set; } = TimeSpan.FromMinutes(20);

    public string? JsonPath { get; private set; }

    public bool KeepLogs { get; private set; }

    public bool Help { get; private set; }

    /// <summary>Keeps the logs of a failed run for inspection.</summary>
    public void KeepLogsOnFailure() => KeepLogs = true;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> naming the bad option.</summary>
    public static DriverOptions Parse(string[] args)
    {
        var options = new DriverOptions();
        string? repo = null, warpd = null, plain = null;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value()
            {
                if (i + 1 >= args.Length)
                {
                    throw new ArgumentException($"{name} needs a value");
                }

                return args[++i];
            }

            switch (name)
            {
                case "-h" or "--help": options.Help = true; break;
                case "--repo": repo = Value(); break;
                case "--warpd": warpd = Value(); break;
                case "--plain": plain = Value(); break;
                case "--wrk": options.Wrk = Value(); break;
                case "--threads": options.Threads = PositiveInt(name, Value()); break;
                case "--connections": options.Connections = PositiveInt(name, Value()); break;
                case "--duration": options.Duration = Time(name, Value()); break;
                case "--warmup": options.Warmup = Time(name, Value(), allowZero: true); break;
                case "--rounds": options.Rounds = PositiveInt(name, Value()); break;
                case "--deploy-runs": options.DeployRuns = PositiveInt(name, Value()); break;
                case "--startup-timeout": options.StartupTimeout = Time(name, Value()); break;
                case "--deploy-timeout": options.DeployTimeout = Time(name, Value()); break;
                case "--time-limit": options.TimeLimit = Time(name, Value()); break;
                case "--json": options.JsonPath = Path.GetFullPath(Value()); break;
                case "--keep-logs": options.KeepLogs = true; break;
                case "--only":
                    var what = Value();
                    options.PlainOnly = what == "plain";
                    options.RunThroughput = what is "throughput" or "plain";
                    options.RunDeploy = what == "deploy";
                    if (!options.RunThroughput && !options.RunDeploy)
                    {
                        throw new ArgumentException($"--only must be 'throughput', 'deploy' or 'plain' (got '{what}')");
                    }

                    break;
                default:
                    throw new ArgumentException($"unknown option '{name}' (see --help)");
            }
        }

        if (options.Help)
        {
            return options;
        }

        options.Repo = Path.GetFullPath(repo ?? WarpGrid.Benchmarks.Shared.RepoPaths.Root);
        if (!File.Exists(Path.Combine(options.Repo, "WarpGrid.sln")))
        {
            throw new ArgumentException($"--repo {options.Repo} does not hold WarpGrid.sln");
        }

        options.WarpdDll = Path.GetFullPath(warpd ?? Path.Combine(options.Repo, "src", "WarpGrid.Daemon", "bin", "Release", "net10.0", "warpd.dll"));
        options.PlainDll = Path.GetFullPath(plain ?? Path.Combine(options.Repo, "benchmarks", "PlainHello", "bin", "Release", "net10.0", "PlainHello.dll"));
        return options;
    }

    /// <summary>Formats a duration the way wrk reads it (<c>10s</c>, <c>500ms</c> is rounded up to whole seconds).</summary>
    public static string WrkDuration(TimeSpan duration) => Math.Max(1, (int)Math.Ceiling(duration.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "s";

    private static int PositiveInt(string name, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{name} must be a positive integer (got '{value}')");

    private static TimeSpan Time(string name, string value, bool allowZero = false)
    {
        var (number, scale) = value switch
        {
            _ when value.EndsWith("ms", StringComparison.Ordinal) => (value[..^2], 0.001),
            _ when value.EndsWith('s') => (value[..^1], 1.0),
            _ when value.EndsWith('m') => (value[..^1], 60.0),
            _ => (value, 1.0),
        };
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) || parsed < 0 || (parsed == 0 && !allowZero))
        {
            throw new ArgumentException($"{name} must be a duration such as 10s, 500ms or 2m (got '{value}')");
        }

        return TimeSpan.FromSeconds(parsed * scale);
    }
}
