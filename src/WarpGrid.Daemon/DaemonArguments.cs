using System.Net;

namespace WarpGrid.Daemon;

/// <summary>warpd's command line.</summary>
internal sealed class DaemonArguments
{
    public const string Usage = """
        usage: warpd [--data-dir DIR] [--api ADDR:PORT] [--ingress ADDR:PORT] [--deploy DIR]...
                     [--api-tls-cert FILE --api-tls-key FILE | --api-tls-self] [--insecure-api]
                     [--cluster ADDR:PORT [--cluster-secret-file FILE]]
                     [--agent --join https://HOST:PORT [--token TOKEN] [--node-name NAME] [--label K=V]... [--taint K=V:EFFECT]...]
                     [--raft-listen ADDR:PORT [--raft-peers ADDR:PORT,... | --raft-join]]
          --data-dir DIR       node state: embedded store, module blobs, compiled cache (default .warpgrid)
          --api ADDR:PORT      REST API listener (default 127.0.0.1:9090); beyond loopback it needs TLS or --insecure-api
          --api-tls-cert FILE  serve the API over TLS with this PEM certificate (chain), reloaded when it changes
          --api-tls-key FILE   the PEM private key of --api-tls-cert (mode 0600)
          --api-tls-self       serve the API over TLS with a certificate from the cluster CA (a node-local CA on a
                               standalone node); clients trust DIR/api-ca.crt. Not on an agent
          --insecure-api       accept plain HTTP on a non-loopback --api (credentials cross the network in clear text)
          --ingress ADDR:PORT  ingress listener for deployments (default 127.0.0.1:8080)
          --deploy DIR         deploy DIR/warp.toml, or every DIR/*/warp.toml, at start (repeatable)
          --cluster ADDR:PORT  be a cluster control plane: agents join on this TLS listener (cluster CA and a first
                               join token are created in DIR/cluster on first start); deployments run on agents
          --cluster-secret-file FILE  the cluster secret (>= 32 bytes, the same file on every member); required with
                               --raft-listen: members derive the cluster CA from it and talk to each other over mTLS
          --agent              be a node agent of the control plane given by --join
          --join URL[,URL...]  the control plane's cluster listener(s), e.g. https://127.0.0.1:9443; with an HA
                               control plane give several members (the agent also learns them and fails over)
          --token TOKEN        join token (wg1.…), needed until the node has a certificate
          --node-name NAME     this node's name (default: the host name)
          --label K=V          node label (repeatable)
          --taint K=V:EFFECT   node taint, EFFECT NoSchedule | PreferNoSchedule | NoExecute (repeatable)
          --raft-listen ADDR:PORT  be a control-plane member: replicate the store with Raft, this member at ADDR:PORT
          --raft-peers LIST    the initial members of a new cluster, comma-separated (this one included or not)
          --raft-join          start without members and wait to be added (POST /v1/cluster/members on a member)
        Settings can also come from configuration: WarpGrid:Node:*, WarpGrid:Runtime:*, WarpGrid:Api:Tls:*, WarpGrid:Cluster:*, WarpGrid:Agent:*, WarpGrid:Raft:*,
        WarpGrid:Supervisor:*, WarpGrid:Telemetry:* (e.g. --WarpGrid:Runtime:MaxInstancesPerNode=500
        --WarpGrid:Cluster:NodeLostAfter=00:00:20 --WarpGrid:Telemetry:Otlp:Endpoint=http://127.0.0.1:4317).
        """;

    public IPEndPoint Api { get; private set; } = new(IPAddress.Loopback, 9090);

    public IPEndPoint Ingress { get; private set; } = new(IPAddress.Loopback, 8080);

    public IPEndPoint? Cluster { get; private set; }

    public bool Agent { get; private set; }

    public string? ClusterSecretFile { get; private set; }

    /// <summary>The API's PEM certificate (chain) file.</summary>
    public string? ApiTlsCertificate { get; private set; }

    /// <summary>The API's PEM key file.</summary>
    public string? ApiTlsKey { get; private set; }

    /// <summary>Whether the API certificate is issued by the cluster CA.</summary>
    public bool ApiTlsSelf { get; private set; }

    /// <summary>Whether plain HTTP on a non-loopback API address is accepted.</summary>
    public bool InsecureApi { get; private set; }

    public string? Join { get; private set; }

    public string? Token { get; private set; }

    public string? NodeName { get; private set; }

    public List<string> Labels { get; } = [];

    public List<string> Taints { get; } = [];

    public string? DataDirectory { get; private set; }

    public List<string> Deploy { get; } = [];

    /// <summary>This member's Raft address when the node is a control-plane member.</summary>
    public string? RaftListen { get; private set; }

    public List<string> RaftPeers { get; } = [];

    public bool RaftJoin { get; private set; }

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
                case "--raft-join":
                    parsed.RaftJoin = true;
                    break;
                case "--raft-listen" or "--raft-peers":
                    if (i + 1 >= args.Length)
                    {
                        error = $"warpd: {arg} needs a value";
                        return false;
                    }

                    var raftValue = args[++i];
                    foreach (var address in arg == "--raft-listen" ? [raftValue] : raftValue.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (!IPEndPoint.TryParse(address.Replace("localhost", "127.0.0.1", StringComparison.Ordinal), out var raftEndPoint) || raftEndPoint.Port == 0)
                        {
                            error = $"warpd: {arg} '{address}' is not ADDR:PORT (e.g. 127.0.0.1:7400)";
                            return false;
                        }
                    }

                    if (arg == "--raft-listen")
                    {
                        parsed.RaftListen = raftValue;
                    }
                    else
                    {
                        parsed.RaftPeers.AddRange(raftValue.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                    }

                    break;
                case "--agent":
                    parsed.Agent = true;
                    break;
                case "--api-tls-self":
                    parsed.ApiTlsSelf = true;
                    break;
                case "--insecure-api":
                    parsed.InsecureApi = true;
                    break;
                case "--data-dir" or "--api" or "--ingress" or "--deploy" or "--cluster" or "--cluster-secret-file" or "--join" or "--token" or "--node-name" or "--label" or "--taint" or "--api-tls-cert" or "--api-tls-key":
                    if (i + 1 >= args.Length)
                    {
                        error = $"warpd: {arg} needs a value";
                        return false;
                    }

                    var value = args[++i];
                    switch (arg)
                    {
                        case "--data-dir":
                            parsed.DataDirectory = value;
                            break;
                        case "--deploy":
                            parsed.Deploy.Add(value);
                            break;
                        case "--cluster-secret-file":
                            parsed.ClusterSecretFile = value;
                            break;
                        case "--api-tls-cert":
                            parsed.ApiTlsCertificate = value;
                            break;
                        case "--api-tls-key":
                            parsed.ApiTlsKey = value;
                            break;
                        case "--join":
                            parsed.Join = value;
                            break;
                        case "--token":
                            parsed.Token = value;
                            break;
                        case "--node-name":
                            parsed.NodeName = value;
                            break;
                        case "--label":
                            parsed.Labels.Add(value);
                            break;
                        case "--taint":
                            parsed.Taints.Add(value);
                            break;
                        default:
                            if (!IPEndPoint.TryParse(value.Replace("localhost", "127.0.0.1", StringComparison.Ordinal), out var endpoint) || endpoint.Port == 0)
                            {
                                error = $"warpd: {arg} '{value}' is not ADDR:PORT (e.g. 127.0.0.1:8080)";
                                return false;
                            }

                            if (arg == "--api")
                            {
                                parsed.Api = endpoint;
                            }
                            else if (arg == "--ingress")
                            {
                                parsed.Ingress = endpoint;
                            }
                            else
                            {
                                parsed.Cluster = endpoint;
                            }

                            break;
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

        if (parsed.Cluster is { } cluster && (cluster.Port == parsed.Api.Port || cluster.Port == parsed.Ingress.Port))
        {
            error = $"warpd: --cluster must use its own port (got {cluster.Port}, also used by --api or --ingress)";
            return false;
        }

        if (parsed.Agent && parsed.Cluster is not null)
        {
            error = "warpd: --agent and --cluster exclude each other (a process is either a control plane or an agent)";
            return false;
        }

        if (parsed.ClusterSecretFile is not null && parsed.Cluster is null)
        {
            error = "warpd: --cluster-secret-file is a control-plane option: add --cluster ADDR:PORT";
            return false;
        }

        if ((parsed.ApiTlsCertificate is null) != (parsed.ApiTlsKey is null))
        {
            error = "warpd: --api-tls-cert and --api-tls-key go together (the PEM certificate and its PEM key)";
            return false;
        }

        if (parsed.ApiTlsSelf && parsed.ApiTlsCertificate is not null)
        {
            error = "warpd: --api-tls-self and --api-tls-cert/--api-tls-key exclude each other (a certificate from the cluster CA, or your own)";
            return false;
        }

        if (parsed.ApiTlsSelf && parsed.Agent)
        {
            error = "warpd: --api-tls-self is not supported on an agent (an agent holds no CA to issue the certificate): give --api-tls-cert/--api-tls-key";
            return false;
        }

        if (parsed.Agent && parsed.Join is null)
        {
            error = "warpd: --agent needs --join https://HOST:PORT (the control plane's --cluster listener)";
            return false;
        }

        if (!parsed.Agent && (parsed.Join is not null || parsed.Token is not null || parsed.NodeName is not null || parsed.Labels.Count > 0 || parsed.Taints.Count > 0))
        {
            error = "warpd: --join, --token, --node-name, --label and --taint are agent options: add --agent";
            return false;
        }

        if (parsed.RaftListen is null && (parsed.RaftJoin || parsed.RaftPeers.Count > 0))
        {
            error = "warpd: --raft-peers and --raft-join need --raft-listen (this member's Raft address)";
            return false;
        }

        if (parsed.Agent && parsed.RaftListen is not null)
        {
            error = "warpd: --agent and --raft-listen exclude each other (Raft members are control-plane processes)";
            return false;
        }

        if (parsed.RaftJoin && parsed.RaftPeers.Count > 0)
        {
            error = "warpd: --raft-peers and --raft-join are exclusive (a joining member learns its peers when it is added)";
            return false;
        }

        parsed.RemainingArgs = [.. rest];
        return true;
    }
}
