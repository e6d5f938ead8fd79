using System.Globalization;
using System.Net;
using System.Net.Security;

namespace WarpGrid.Raft;

/// <summary>
/// Settings of one control-plane member of the Raft-replicated store (bound from <c>WarpGrid:Raft</c>).
/// </summary>
public sealed class RaftStoreOptions
{
    /// <summary>The configuration section the options bind from.</summary>
    public const string Section = "WarpGrid:Raft";

    /// <summary>
    /// This member's Raft address, <c>HOST:PORT</c> (an IP literal or <c>localhost</c>), where peers reach it. Also its identity.
    /// </summary>
    public string Listen { get; set; } = string.Empty;

    /// <summary>
    /// The initial members (<c>HOST:PORT</c>, this member included or not) for a new cluster, as etcd's
    /// <c>--initial-cluster</c>. Ignored once the member has persisted a membership. Empty with <see cref="Join"/> false:
    /// a one-member cluster.
    /// </summary>
    public IList<string> Peers { get; set; } = [];

    /// <summary>
    /// Start with no membership and wait to be added by the leader (<c>POST /v1/cluster/members</c> on a member).
    /// </summary>
    public bool Join { get; set; }

    /// <summary>Where the member keeps its log, snapshots and membership. Required.</summary>
    public string DataDirectory { get; set; } = string.Empty;

    /// <summary>The lower bound of the randomised election timeout (default 150 ms).</summary>
    public TimeSpan ElectionTimeoutMin { get; set; } = TimeSpan.FromMilliseconds(150);

    /// <summary>The upper bound of the randomised election timeout (default 300 ms).</summary>
    public TimeSpan ElectionTimeoutMax { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// The timeout of one Raft request to a peer (default 1 s). Must be well above <see cref="ElectionTimeoutMax"/>:
    /// a request timeout shorter than a snapshot transfer leaves followers stuck.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a write or a linearizable read waits for a leader before failing (default 10 s).</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The most store operations grouped into one log entry (default 512).</summary>
    public int MaxBatchOperations { get; set; } = 512;

    /// <summary>How many log entries the leader replicates at once (default 4); writes arriving meanwhile form the next batch.</summary>
    public int MaxBatchesInFlight { get; set; } = 4;

    /// <summary>A snapshot is taken (and the log compacted up to it) every this many applied log entries (default 4096).</summary>
    public int SnapshotInterval { get; set; } = 4096;

    /// <summary>
    /// The address (<c>HOST:PORT</c>) on which this member accepts writes forwarded by followers. Default: the host of
    /// <see cref="Listen"/> with a free port; peers learn it from the member's Raft metadata.
    /// </summary>
    public string? ForwardListen { get; set; }

    /// <summary>
    /// Test seam: awaited by each background FASTER checkpoint before it completes (see
    /// <see cref="FasterStateStore.BackgroundCheckpointGate"/>). Not bound from configuration.
    /// </summary>
    internal Func<CheckpointCookie, Task>? CheckpointGate { get; set; }

    /// <summary>Changes kept for watches that resume from a revision (default 10,000).</summary>
    public int WatchHistoryCapacity { get; set; } = 10_000;

    /// <summary>
    /// TLS for incoming member connections (Raft and forwarded writes). Set together with <see cref="ClientTls"/> for
    /// member-to-member mTLS (e.g. certificates issued by the cluster CA). Not bound from configuration.
    /// </summary>
    public SslServerAuthenticationOptions? ServerTls { get; set; }

    /// <summary>TLS for outgoing member connections. Not bound from configuration.</summary>
    public SslClientAuthenticationOptions? ClientTls { get; set; }

    /// <summary>Checks every setting and returns one message per problem, each naming the setting.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Listen))
        {
            errors.Add($"{Section}:Listen is required (this member's Raft address, HOST:PORT, e.g. 127.0.0.1:7400).");
        }
        else if (!TryParseEndPoint(Listen, out _))
        {
            errors.Add($"{Section}:Listen '{Listen}' is not HOST:PORT with an IP address or localhost and a port in 1-65535.");
        }

        for (int i = 0; i < Peers.Count; i++)
        {
            if (!TryParseEndPoint(Peers[i], out _))
            {
                errors.Add($"{Section}:Peers:{i} '{Peers[i]}' is not HOST:PORT with an IP address or localhost and a port in 1-65535.");
            }
        }

        if (Join && Peers.Count > 0)
        {
            errors.Add($"{Section}:Join and {Section}:Peers are exclusive: a joining member learns its peers from the leader.");
        }

        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            errors.Add($"{Section}:DataDirectory is required (where the member keeps its log, snapshots and membership).");
        }

        if (ElectionTimeoutMin < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"{Section}:ElectionTimeoutMin must be at least 10 ms (found {ElectionTimeoutMin.TotalMilliseconds} ms).");
        }

        if (ElectionTimeoutMax <= ElectionTimeoutMin)
        {
            errors.Add($"{Section}:ElectionTimeoutMax ({ElectionTimeoutMax.TotalMilliseconds} ms) must be greater than {Section}:ElectionTimeoutMin ({ElectionTimeoutMin.TotalMilliseconds} ms).");
        }

        if (RequestTimeout < 2 * ElectionTimeoutMax)
        {
            errors.Add($"{Section}:RequestTimeout ({RequestTimeout.TotalMilliseconds} ms) must be at least twice {Section}:ElectionTimeoutMax ({ElectionTimeoutMax.TotalMilliseconds} ms); shorter request timeouts leave followers stuck in snapshot installation.");
        }

        if (OperationTimeout < RequestTimeout)
        {
            errors.Add($"{Section}:OperationTimeout ({OperationTimeout.TotalMilliseconds} ms) must be at least {Section}:RequestTimeout ({RequestTimeout.TotalMilliseconds} ms).");
        }

        if (MaxBatchOperations is < 1 or > 65_536)
        {
            errors.Add($"{Section}:MaxBatchOperations must be between 1 and 65536 (found {MaxBatchOperations}).");
        }

        if (MaxBatchesInFlight is < 1 or > 64)
        {
            errors.Add($"{Section}:MaxBatchesInFlight must be between 1 and 64 (found {MaxBatchesInFlight}).");
        }

        if (SnapshotInterval < 16)
        {
            errors.Add($"{Section}:SnapshotInterval must be at least 16 log entries (found {SnapshotInterval}).");
        }

        if (ForwardListen is { Length: > 0 } forward && !TryParseEndPoint(forward, out _, allowPortZero: true))
        {
            errors.Add($"{Section}:ForwardListen '{forward}' is not HOST:PORT with an IP address or localhost.");
        }

        if (WatchHistoryCapacity < 1)
        {
            errors.Add($"{Section}:WatchHistoryCapacity must be at least 1 (found {WatchHistoryCapacity}).");
        }

        if ((ServerTls is null) != (ClientTls is null))
        {
            errors.Add($"{Section}: ServerTls and ClientTls must be set together (member links are either all TLS or all plain).");
        }

        return errors;
    }

    /// <summary>Parses <c>HOST:PORT</c> where HOST is an IP literal or <c>localhost</c> (127.0.0.1).</summary>
    public static bool TryParseEndPoint(string? text, out IPEndPoint endPoint, bool allowPortZero = false)
    {
        endPoint = null!;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string value = text.Trim();
        if (value.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            value = "127.0.0.1" + value["localhost".Length..];
        }

        if (!IPEndPoint.TryParse(value, out IPEndPoint? parsed) || (parsed.Port == 0 && !allowPortZero)
            || !value.Contains(':', StringComparison.Ordinal))
        {
            return false;
        }

        endPoint = parsed;
        return true;
    }

    internal static string Format(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => ip.ToString(),
        DnsEndPoint dns => string.Create(CultureInfo.InvariantCulture, $"{dns.Host}:{dns.Port}"),
        _ => endPoint.ToString() ?? string.Empty,
    };
}
