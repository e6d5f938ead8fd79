using System.Net;

namespace WarpGrid.Daemon;

/// <summary>warpd's command line.</summary>
internal sealed class DaemonArguments
{
    public const string Usage = """
        usage: warpd [--data-dir DIR] [--api ADDR:PORT] [--ingress ADDR:PORT] [--deploy DIR]...
          --data-dir DIR       node state: embedded store, module blobs, compiled cache (default .warpgrid)
          --api ADDR:PORT      REST API listener (default 127.0.0.1:9090)
          --ingress ADDR:PORT  ingress listener for deployments (default 127.0.0.1:8080)
          --deploy DIR         deploy DIR/warp.toml, or every DIR/*/warp.toml, at start (repeatable)
        Settings can also come from configuration: WarpGrid:Node:* and WarpGrid:Runtime:* (e.g. --WarpGrid:Runtime:MaxInstancesPerNode=500).
        """;

    public IPEndPoint Api { get; private set; } = new(IPAddress.Loopback, 9090);

    public IPEndPoint Ingress { get; private set; } = new(IPAddress.Loopback, 8080);

    public string? DataDirectory { get; private set; }

    public List<string> Deploy { get; } = [];

    public string[] RemainingArgs { get; private set; } = [];

    public static bool TryParse(string[] args, out DaemonArguments parsed, out string? error)
    {
        parsed = new DaemonArguments();
        var rest = new List<string>();
        error = null;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "-h" or "--help":
                    return false;
                case "--data-dir" or "--api" or "--ingress" or "--deploy":
                    if (i + 1 >= args.Length)
                    {
                        error = $"warpd: {arg} needs a value";
                        return false;
                    }

                    var value = args[++i];
                    if (arg == "--data-dir")
                    {
                        parsed.DataDirectory = value;
                    }
                    else if (arg == "--deploy")
                    {
                        parsed.Deploy.Add(value);
                    }
                    else if (!IPEndPoint.TryParse(value.Replace("localhost", "127.0.0.1", StringComparison.Ordinal), out var endpoint) || endpoint.Port == 0)
                    {
                        error = $"warpd: {arg} '{value}' is not ADDR:PORT (e.g. 127.0.0.1:8080)";
                        return false;
                    }
                    else if (arg == "--api")
                    {
                        parsed.Api = endpoint;
                    }
                    else
                    {
                        parsed.Ingress = endpoint;
                    }

                    break;
                default:
                    rest.Add(arg);
                    break;
            }
        }

        if (parsed.Api.Port == parsed.Ingress.Port)
        {
            error = $"warpd: --api and --ingress must use different ports (both {parsed.Api.Port})";
            return false;
        }

        parsed.RemainingArgs = [.. rest];
        return true;
    }
}
