namespace WarpGrid.Core.Scheduling;

/// <summary>Health of a node as seen by the scheduler. Only <see cref="Ready"/> nodes receive instances.</summary>
public enum NodeStatus
{
    /// <summary>The node heartbeats and accepts instances.</summary>
    Ready,

    /// <summary>The node reports a problem; it keeps what it runs but receives nothing new.</summary>
    NotReady,

    /// <summary>The node stopped heartbeating; it receives nothing.</summary>
    Lost,
}

/// <summary>What a taint does to instances that do not tolerate it.</summary>
public enum TaintEffect
{
    /// <summary>Untolerating instances are never placed on the node.</summary>
    NoSchedule,

    /// <summary>Untolerating instances are placed on the node only when better nodes are not available (a score penalty).</summary>
    PreferNoSchedule,

    /// <summary>Like <see cref="NoSchedule"/>; in addition the node agent evicts running untolerating instances.</summary>
    NoExecute,
}

/// <summary>How a toleration matches a taint's value.</summary>
public enum TolerationOperator
{
    /// <summary>Key and value must both be equal.</summary>
    Equal,

    /// <summary>Only the key must be equal; an empty key with <see cref="Exists"/> tolerates every taint.</summary>
    Exists,
}

/// <summary>How the scheduler scores nodes that pass every filter.</summary>
public enum ScoringStrategy
{
    /// <summary>Use the cluster default, <see cref="SchedulerOptions.DefaultStrategy"/>.</summary>
    Default,

    /// <summary>Most-allocated: prefer the fullest node that fits, keeping other nodes empty.</summary>
    BinPack,

    /// <summary>Least-allocated, and fewest instances of the same deployment: spread the load.</summary>
    Spread,
}

/// <summary>Well-known topology keys for affinity terms. Any other key names a node label.</summary>
public static class TopologyKeys
{
    /// <summary>Each node is its own domain (the node name is the value).</summary>
    public const string Node = "node";

    /// <summary>The node label <c>zone</c>.</summary>
    public const string Zone = "zone";

    /// <summary>The node label <c>region</c>.</summary>
    public const string Region = "region";
}

/// <summary>A taint on a node: instances must tolerate it to be placed there (see <see cref="TaintEffect"/>).</summary>
/// <param name="Key">The taint key, e.g. <c>gpu</c>.</param>
/// <param name="Value">The taint value, e.g. <c>true</c>; may be empty.</param>
/// <param name="Effect">What the taint does to untolerating instances.</param>
public sealed record Taint(string Key, string Value, TaintEffect Effect)
{
    private string? _reason;

    internal string NotToleratedReason => _reason ??= Value.Length == 0 ? $"taint {Key} not tolerated" : $"taint {Key}={Value} not tolerated";

    /// <inheritdoc />
    public override string ToString() => $"{Key}={Value}:{Effect}";
}

/// <summary>Lets an instance be placed on a node with a matching taint.</summary>
/// <param name="Key">The taint key; empty with <see cref="TolerationOperator.Exists"/> matches every key.</param>
/// <param name="Value">The value to match with <see cref="TolerationOperator.Equal"/>.</param>
/// <param name="Effect">The effect to match; <see langword="null"/> matches every effect.</param>
/// <param name="Operator">How the value is matched.</param>
public sealed record Toleration(string Key, string Value = "", TaintEffect? Effect = null, TolerationOperator Operator = TolerationOperator.Equal)
{
    /// <summary>Whether this toleration tolerates <paramref name="taint"/>.</summary>
    public bool Tolerates(Taint taint)
    {
        ArgumentNullException.ThrowIfNull(taint);
        if (Effect is { } effect && effect != taint.Effect)
        {
            return false;
        }

        if (Key.Length == 0)
        {
            return Operator == TolerationOperator.Exists;
        }

        return string.Equals(Key, taint.Key, StringComparison.Ordinal)
            && (Operator == TolerationOperator.Exists || string.Equals(Value, taint.Value, StringComparison.Ordinal));
    }
}

/// <summary>
/// An (anti-)affinity term: instances whose labels contain all of <see cref="MatchLabels"/>, counted per topology domain
/// (the value of <see cref="TopologyKey"/> on the node they run on).
/// </summary>
public sealed record AffinityTerm
{
    /// <summary>Labels an existing instance must all carry to match the term.</summary>
    public required IReadOnlyDictionary<string, string> MatchLabels { get; init; }

    /// <summary>The domain: <see cref="TopologyKeys.Node"/>, or a node label key such as <see cref="TopologyKeys.Zone"/>.</summary>
    public string TopologyKey { get; init; } = TopologyKeys.Node;

    /// <summary>A required term filters nodes; a preferred one only scores them, by <see cref="Weight"/>.</summary>
    public bool Required { get; init; }

    /// <summary>The weight of a preferred term, 1..100. Ignored for required terms.</summary>
    public int Weight { get; init; } = 1;

    /// <summary>Whether an instance's labels match this term.</summary>
    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        foreach (var pair in MatchLabels)
        {
            if (!labels.TryGetValue(pair.Key, out var value) || !string.Equals(value, pair.Value, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    internal string Selector()
    {
        var keys = MatchLabels.Keys.ToArray();
        Array.Sort(keys, StringComparer.Ordinal);
        return string.Join(",", keys.Select(k => k + "=" + MatchLabels[k]));
    }
}

/// <summary>Resources a node offers.</summary>
/// <param name="MemoryBytes">Memory available to instances (sum of their <c>memory_limit</c>).</param>
/// <param name="CpuWeight">CPU weight available to instances (sum of their <c>cpu_weight</c>).</param>
/// <param name="InstanceSlots">How many instances the node may run.</param>
public readonly record struct NodeCapacity(long MemoryBytes, long CpuWeight, int InstanceSlots);

/// <summary>An instance already bound to a node.</summary>
public sealed record PlacedInstance
{
    private static readonly IReadOnlyDictionary<string, string> NoLabels = new Dictionary<string, string>();

    /// <summary>A stable identifier of the instance, reported when it is a preemption victim.</summary>
    public required string InstanceId { get; init; }

    /// <summary>The deployment the instance belongs to.</summary>
    public required string Deployment { get; init; }

    /// <summary>The deployment's priority; only instances of strictly lower priority than a request can be preempted by it.</summary>
    public int Priority { get; init; }

    /// <summary>Memory the instance reserves.</summary>
    public long MemoryBytes { get; init; }

    /// <summary>CPU weight the instance reserves.</summary>
    public int CpuWeight { get; init; }

    /// <summary>The deployment's labels, matched by affinity terms.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = NoLabels;

    /// <summary>The deployment's minimum-available budget: preemption never leaves fewer instances of it on ready nodes.</summary>
    public int MinAvailable { get; init; }
}

/// <summary>A node as the scheduler sees it: identity, labels, taints, capacity and what it already runs.</summary>
public sealed record SchedulerNode
{
    internal static readonly IReadOnlyDictionary<string, string> NoLabels = new Dictionary<string, string>();

    /// <summary>The unique node name; ties between equally scored nodes go to the ordinally smallest name.</summary>
    public required string Name { get; init; }

    /// <summary>Node labels, matched by node selectors and used as topology domains.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = NoLabels;

    /// <summary>Taints; see <see cref="TaintEffect"/>.</summary>
    public IReadOnlyList<Taint> Taints { get; init; } = [];

    /// <summary>What the node offers in total.</summary>
    public NodeCapacity Capacity { get; init; }

    /// <summary>Instances already bound to the node.</summary>
    public IReadOnlyList<PlacedInstance> Allocated { get; init; } = [];

    /// <summary>Health; only <see cref="NodeStatus.Ready"/> nodes receive instances.</summary>
    public NodeStatus Status { get; init; } = NodeStatus.Ready;

    /// <summary>A cordoned node keeps its instances but receives no new ones.</summary>
    public bool Cordoned { get; init; }
}

/// <summary>What to place: <see cref="Instances"/> more instances of one deployment.</summary>
public sealed record PlacementRequest
{
    /// <summary>The deployment name.</summary>
    public required string Deployment { get; init; }

    /// <summary>The deployment's labels; placed instances carry them, and affinity terms of others match them.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = SchedulerNode.NoLabels;

    /// <summary>Memory each instance reserves (<c>memory_limit</c>).</summary>
    public long MemoryBytes { get; init; }

    /// <summary>CPU weight each instance reserves (<c>cpu_weight</c>).</summary>
    public int CpuWeight { get; init; }

    /// <summary>How many instances to place (in addition to those already in the snapshot).</summary>
    public int Instances { get; init; } = 1;

    /// <summary>Higher runs first and may preempt strictly lower priorities.</summary>
    public int Priority { get; init; }

    /// <summary>Node labels a node must all carry (exact values).</summary>
    public IReadOnlyDictionary<string, string> NodeSelector { get; init; } = SchedulerNode.NoLabels;

    /// <summary>Taints the instances tolerate.</summary>
    public IReadOnlyList<Toleration> Tolerations { get; init; } = [];

    /// <summary>Terms the instances want to be near (same topology domain as matching instances).</summary>
    public IReadOnlyList<AffinityTerm> Affinity { get; init; } = [];

    /// <summary>Terms the instances want to be away from (no matching instance in the same topology domain).</summary>
    public IReadOnlyList<AffinityTerm> AntiAffinity { get; init; } = [];

    /// <summary>Bin-pack or spread; <see cref="ScoringStrategy.Default"/> uses the cluster default.</summary>
    public ScoringStrategy Strategy { get; init; }

    /// <summary>Minimum-available budget the placed instances carry when they are later considered as preemption victims.</summary>
    public int MinAvailable { get; init; }
}

/// <summary>An immutable view of the cluster the scheduler places into. Nodes are held sorted by name (ordinal).</summary>
public sealed class ClusterSnapshot
{
    private readonly long[] _usedMemory;
    private readonly long[] _usedCpu;
    private readonly int[] _usedSlots;
    private readonly Dictionary<string, int> _readyCounts;
    private readonly Dictionary<string, int> _budgets;
    private Dictionary<string, Dictionary<int, int>>? _perNodeCounts;

    /// <summary>Creates a snapshot of <paramref name="nodes"/>; names must be unique.</summary>
    /// <exception cref="ArgumentException">Two nodes share a name.</exception>
    public ClusterSnapshot(IEnumerable<SchedulerNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var array = nodes.ToArray();
        Array.Sort(array, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (int i = 1; i < array.Length; i++)
        {
            if (string.Equals(array[i - 1].Name, array[i].Name, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Duplicate node name '{array[i].Name}'.", nameof(nodes));
            }
        }

        Nodes = array;
        _usedMemory = new long[array.Length];
        _usedCpu = new long[array.Length];
        _usedSlots = new int[array.Length];
        _readyCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        _budgets = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < array.Length; i++)
        {
            var node = array[i];
            foreach (var instance in node.Allocated)
            {
                _usedMemory[i] += instance.MemoryBytes;
                _usedCpu[i] += instance.CpuWeight;
                _usedSlots[i]++;
                if (instance.MinAvailable > _budgets.GetValueOrDefault(instance.Deployment))
                {
                    _budgets[instance.Deployment] = instance.MinAvailable;
                }
                if (node.Status == NodeStatus.Ready)
                {
                    _readyCounts[instance.Deployment] = _readyCounts.GetValueOrDefault(instance.Deployment) + 1;
                }
            }
        }
    }

    /// <summary>The nodes, sorted by name (ordinal).</summary>
    public IReadOnlyList<SchedulerNode> Nodes { get; }

    internal SchedulerNode[] NodeArray => (SchedulerNode[])Nodes;

    internal long UsedMemory(int index) => _usedMemory[index];

    internal long UsedCpu(int index) => _usedCpu[index];

    internal int UsedSlots(int index) => _usedSlots[index];

    internal int ReadyCount(string deployment) => _readyCounts.GetValueOrDefault(deployment);

    /// <summary>A deployment's min-available budget: the largest <see cref="PlacedInstance.MinAvailable"/> among its instances.</summary>
    internal int Budget(string deployment) => _budgets.GetValueOrDefault(deployment);

    /// <summary>Node index → number of instances of <paramref name="deployment"/> on it (built once, on first use).</summary>
    internal Dictionary<int, int>? PerNodeCounts(string deployment)
    {
        var all = Volatile.Read(ref _perNodeCounts);
        if (all is null)
        {
            all = new Dictionary<string, Dictionary<int, int>>(StringComparer.Ordinal);
            var nodes = NodeArray;
            for (int i = 0; i < nodes.Length; i++)
            {
                foreach (var instance in nodes[i].Allocated)
                {
                    if (!all.TryGetValue(instance.Deployment, out var counts))
                    {
                        all[instance.Deployment] = counts = [];
                    }

                    counts[i] = counts.GetValueOrDefault(i) + 1;
                }
            }

            Interlocked.CompareExchange(ref _perNodeCounts, all, null);
            all = _perNodeCounts!;
        }

        return all.GetValueOrDefault(deployment);
    }
}
