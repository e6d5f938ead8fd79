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

    /// <summary>
    /// A draining node receives no new instances and its instances are to be moved elsewhere (see <see cref="Rescheduler"/>),
    /// in batches that keep each deployment's min-available budget.
    /// </summary>
    public bool Draining { get; init; }
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

/// <summary>
/// A view of the cluster the scheduler places into. Nodes are held sorted by name (ordinal). A snapshot built with the
/// constructor never changes; the one owned by a <see cref="ClusterState"/> changes only when its owner binds or evicts,
/// between scheduling calls (as Kubernetes' scheduler cache updates its snapshot between cycles).
/// </summary>
public sealed class ClusterSnapshot
{
    private readonly long[] _usedMemory;
    private readonly long[] _usedCpu;
    private readonly int[] _usedSlots;
    private readonly long[] _capMemory;
    private readonly long[] _capCpu;
    private readonly int[] _capSlots;
    private readonly Dictionary<string, int> _readyCounts;
    private readonly Dictionary<string, int> _budgets;
    private readonly Dictionary<string, int> _byName;
    private readonly Lock _cacheLock = new();
    private readonly Dictionary<string, (int[] Ids, int Count)> _domains = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StaticFilterResult> _static = new(StringComparer.Ordinal);
    private Dictionary<string, Dictionary<int, int>>? _perNodeCounts;
    private Dictionary<string, List<(int Node, PlacedInstance Instance)>>? _byLabel;

    /// <summary>Creates a snapshot of <paramref name="nodes"/>; names must be unique.</summary>
    /// <exception cref="ArgumentException">Two nodes share a name.</exception>
    public ClusterSnapshot(IEnumerable<SchedulerNode> nodes)
        : this(nodes, live: false)
    {
    }

    internal ClusterSnapshot(IEnumerable<SchedulerNode> nodes, bool live)
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

        if (live)
        {
            for (int i = 0; i < array.Length; i++)
            {
                array[i] = array[i] with { Allocated = new List<PlacedInstance>(array[i].Allocated) };
            }
        }

        IsLive = live;
        Nodes = array;
        NodeArray = array;
        _usedMemory = new long[array.Length];
        _usedCpu = new long[array.Length];
        _usedSlots = new int[array.Length];
        _capMemory = new long[array.Length];
        _capCpu = new long[array.Length];
        _capSlots = new int[array.Length];
        _readyCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        _budgets = new Dictionary<string, int>(StringComparer.Ordinal);
        _byName = new Dictionary<string, int>(array.Length, StringComparer.Ordinal);
        for (int i = 0; i < array.Length; i++)
        {
            var node = array[i];
            _byName[node.Name] = i;
            _capMemory[i] = node.Capacity.MemoryBytes;
            _capCpu[i] = node.Capacity.CpuWeight;
            _capSlots[i] = node.Capacity.InstanceSlots;
            foreach (var instance in node.Allocated)
            {
                Count(i, instance, +1);
            }
        }
    }

    /// <summary>The nodes, sorted by name (ordinal).</summary>
    public IReadOnlyList<SchedulerNode> Nodes { get; }

    internal SchedulerNode[] NodeArray { get; }

    internal bool IsLive { get; }

    internal long[] CapacityMemory => _capMemory;

    internal long[] CapacityCpu => _capCpu;

    internal int[] CapacitySlots => _capSlots;

    internal long[] UsedMemoryArray => _usedMemory;

    internal long[] UsedCpuArray => _usedCpu;

    internal int[] UsedSlotsArray => _usedSlots;

    /// <summary>The index of the node named <paramref name="name"/> in <see cref="Nodes"/>, or −1.</summary>
    public int IndexOf(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out int i) ? i : -1;
    }

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
                    AddCount(all, instance.Deployment, i, +1);
                }
            }

            Interlocked.CompareExchange(ref _perNodeCounts, all, null);
            all = _perNodeCounts!;
        }

        return all.GetValueOrDefault(deployment);
    }

    /// <summary>Instances carrying the label <paramref name="key"/>=<paramref name="value"/>, with their node (index built once, on first use).</summary>
    internal List<(int Node, PlacedInstance Instance)>? WithLabel(string key, string value)
    {
        var all = Volatile.Read(ref _byLabel);
        if (all is null)
        {
            all = new Dictionary<string, List<(int, PlacedInstance)>>(StringComparer.Ordinal);
            var nodes = NodeArray;
            for (int i = 0; i < nodes.Length; i++)
            {
                foreach (var instance in nodes[i].Allocated)
                {
                    IndexLabels(all, i, instance, +1);
                }
            }

            Interlocked.CompareExchange(ref _byLabel, all, null);
            all = _byLabel!;
        }

        return all.GetValueOrDefault(LabelKey(key, value));
    }

    /// <summary>Per node, the id of its topology domain for <paramref name="topologyKey"/> (−1 without the label), and the number of domains.</summary>
    internal (int[] Ids, int Count) Domains(string topologyKey)
    {
        lock (_cacheLock)
        {
            if (_domains.TryGetValue(topologyKey, out var cached))
            {
                return cached;
            }

            var ids = new int[NodeArray.Length];
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < ids.Length; i++)
            {
                var value = PlacementContext.TopologyValue(NodeArray[i], topologyKey);
                if (value is null)
                {
                    ids[i] = -1;
                    continue;
                }

                if (!seen.TryGetValue(value, out int id))
                {
                    seen[value] = id = seen.Count;
                }

                ids[i] = id;
            }

            var result = (ids, seen.Count);
            _domains[topologyKey] = result;
            return result;
        }
    }

    /// <summary>Caches the per-request result of the filters that depend only on the node and the request (readiness, selector, taints).</summary>
    internal StaticFilterResult StaticFilter(string key, Func<StaticFilterResult> compute)
    {
        lock (_cacheLock)
        {
            if (_static.TryGetValue(key, out var cached))
            {
                return cached;
            }
        }

        var result = compute();
        lock (_cacheLock)
        {
            if (_static.Count >= 1024)
            {
                _static.Clear();
            }

            _static[key] = result;
        }

        return result;
    }

    internal void Bind(int i, PlacedInstance instance)
    {
        ((List<PlacedInstance>)NodeArray[i].Allocated).Add(instance);
        Count(i, instance, +1);
    }

    internal bool Evict(int i, PlacedInstance instance)
    {
        if (!((List<PlacedInstance>)NodeArray[i].Allocated).Remove(instance))
        {
            return false;
        }

        Count(i, instance, -1);
        return true;
    }

    private void Count(int i, PlacedInstance instance, int sign)
    {
        _usedMemory[i] += sign * instance.MemoryBytes;
        _usedCpu[i] += sign * instance.CpuWeight;
        _usedSlots[i] += sign;
        if (sign > 0 && instance.MinAvailable > _budgets.GetValueOrDefault(instance.Deployment))
        {
            _budgets[instance.Deployment] = instance.MinAvailable;
        }

        if (NodeArray[i].Status == NodeStatus.Ready)
        {
            _readyCounts[instance.Deployment] = _readyCounts.GetValueOrDefault(instance.Deployment) + sign;
        }

        if (_perNodeCounts is { } counts)
        {
            AddCount(counts, instance.Deployment, i, sign);
        }

        if (_byLabel is { } byLabel)
        {
            IndexLabels(byLabel, i, instance, sign);
        }
    }

    private static void AddCount(Dictionary<string, Dictionary<int, int>> all, string deployment, int node, int sign)
    {
        if (!all.TryGetValue(deployment, out var counts))
        {
            all[deployment] = counts = [];
        }

        int c = counts.GetValueOrDefault(node) + sign;
        if (c == 0)
        {
            counts.Remove(node);
        }
        else
        {
            counts[node] = c;
        }
    }

    private static void IndexLabels(Dictionary<string, List<(int, PlacedInstance)>> all, int node, PlacedInstance instance, int sign)
    {
        foreach (var pair in instance.Labels)
        {
            var key = LabelKey(pair.Key, pair.Value);
            if (!all.TryGetValue(key, out var list))
            {
                all[key] = list = [];
            }

            if (sign > 0)
            {
                list.Add((node, instance));
            }
            else
            {
                list.Remove((node, instance));
            }
        }
    }

    private static string LabelKey(string key, string value) => string.Concat(key, "\0", value);
}

/// <summary>Nodes that pass the request-independent-of-usage filters, in index order, and their taint score.</summary>
internal sealed class StaticFilterResult(int[] candidates, byte[] taintScore)
{
    public int[] Candidates { get; } = candidates;

    public byte[] TaintScore { get; } = taintScore;
}

/// <summary>
/// A mutable cluster model for one writer: a live <see cref="Snapshot"/> plus <see cref="Bind(PlacementResult)"/> and
/// <see cref="Evict"/> to apply scheduling decisions incrementally (used by simulations and the <see cref="Rescheduler"/>).
/// Not thread-safe; do not schedule against <see cref="Snapshot"/> while binding.
/// </summary>
public sealed class ClusterState
{
    /// <summary>Copies <paramref name="nodes"/> (their instance lists are copied; the records are shared).</summary>
    public ClusterState(IEnumerable<SchedulerNode> nodes)
    {
        Snapshot = new ClusterSnapshot(nodes, live: true);
    }

    /// <summary>The current view; it reflects every bind and eviction made so far.</summary>
    public ClusterSnapshot Snapshot { get; }

    /// <summary>Applies a result: evicts its victims, then binds every placed instance to its node.</summary>
    public void Bind(PlacementResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        foreach (var v in result.Victims)
        {
            Evict(v.NodeName, v.Instance);
        }

        foreach (var p in result.Instances)
        {
            if (p.NodeName is not null && p.Instance is not null)
            {
                Bind(p.NodeName, p.Instance);
            }
        }
    }

    /// <summary>Binds <paramref name="instance"/> to the node named <paramref name="nodeName"/> (no checks: the scheduler decided).</summary>
    /// <exception cref="ArgumentException">No such node.</exception>
    public void Bind(string nodeName, PlacedInstance instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        Snapshot.Bind(Index(nodeName), instance);
    }

    /// <summary>Removes <paramref name="instance"/> from the node named <paramref name="nodeName"/>; false if it was not there.</summary>
    /// <exception cref="ArgumentException">No such node.</exception>
    public bool Evict(string nodeName, PlacedInstance instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return Snapshot.Evict(Index(nodeName), instance);
    }

    private int Index(string nodeName)
    {
        int i = Snapshot.IndexOf(nodeName);
        return i >= 0 ? i : throw new ArgumentException($"No node named '{nodeName}'.", nameof(nodeName));
    }
}
