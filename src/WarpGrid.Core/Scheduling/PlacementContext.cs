namespace WarpGrid.Core.Scheduling;

/// <summary>
/// The state of one placement in progress: the snapshot, the request, and a working copy of usage that includes the
/// instances placed (and evicted) so far for this request. Plugins read it; only the framework changes it.
/// </summary>
public sealed class PlacementContext
{
    [ThreadStatic]
    private static Workspace? t_workspace;

    private readonly ClusterSnapshot _snapshot;
    private Workspace? _ws;
    private Dictionary<int, List<PlacedInstance>>? _instances;
    private Dictionary<int, int>? _ownPerNode;
    private bool _ownPerNodeCopied;
    private Dictionary<string, int>? _readyDelta;

    internal PlacementContext(ClusterSnapshot snapshot, PlacementRequest request, ScoringStrategy strategy)
    {
        _snapshot = snapshot;
        Request = request;
        Strategy = strategy;
        int n = snapshot.NodeArray.Length;
        _ws = t_workspace is { } ws && ws.Memory.Length >= n ? ws : new Workspace(n);
        t_workspace = null;

        var selector = new List<(string, string, string)>(request.NodeSelector.Count);
        foreach (var pair in request.NodeSelector)
        {
            selector.Add((pair.Key, pair.Value, $"node selector {pair.Key}={pair.Value} not matched"));
        }

        selector.Sort(static (a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        Selector = selector.ToArray();
        Tolerations = request.Tolerations as Toleration[] ?? request.Tolerations.ToArray();

        var terms = new List<TermState>(request.Affinity.Count + request.AntiAffinity.Count);
        foreach (var t in request.Affinity)
        {
            terms.Add(new TermState(t, anti: false, request.Labels));
        }

        foreach (var t in request.AntiAffinity)
        {
            terms.Add(new TermState(t, anti: true, request.Labels));
        }

        Terms = terms.ToArray();
        if (Terms.Length > 0)
        {
            var nodes = snapshot.NodeArray;
            for (int i = 0; i < nodes.Length; i++)
            {
                foreach (var instance in nodes[i].Allocated)
                {
                    CountTerms(i, instance, +1);
                }
            }
        }

        foreach (var t in Terms)
        {
            if (t.Term.Required)
            {
                HasRequiredTerms = true;
            }
            else
            {
                HasPreferredTerms = true;
                if (t.Anti)
                {
                    PreferredAntiWeight += Math.Clamp(t.Term.Weight, 1, 100);
                }
                else
                {
                    PreferredWeight += Math.Clamp(t.Term.Weight, 1, 100);
                }
            }
        }

        _ownPerNode = snapshot.PerNodeCounts(request.Deployment);
    }

    /// <summary>The snapshot being placed into.</summary>
    public ClusterSnapshot Snapshot => _snapshot;

    /// <summary>The request being placed.</summary>
    public PlacementRequest Request { get; }

    /// <summary>The effective strategy (the request's, or the cluster default).</summary>
    public ScoringStrategy Strategy { get; }

    /// <summary>The index, within the request, of the instance being placed.</summary>
    public int InstanceIndex { get; internal set; }

    internal (string Key, string Value, string Reason)[] Selector { get; }

    internal Toleration[] Tolerations { get; }

    internal TermState[] Terms { get; }

    internal bool HasRequiredTerms { get; }

    internal bool HasPreferredTerms { get; }

    internal int PreferredWeight { get; }

    internal int PreferredAntiWeight { get; }

    /// <summary>The node's value for a topology key: its name for <see cref="TopologyKeys.Node"/>, else the label; <see langword="null"/> when missing.</summary>
    public static string? TopologyValue(SchedulerNode node, string topologyKey)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (string.Equals(topologyKey, TopologyKeys.Node, StringComparison.Ordinal))
        {
            return node.Name;
        }

        return node.Labels.TryGetValue(topologyKey, out var value) ? value : null;
    }

    /// <summary>How many instances of the request's own deployment run on the node now.</summary>
    public int OwnInstancesOn(int nodeIndex) => _ownPerNode is null ? 0 : _ownPerNode.GetValueOrDefault(nodeIndex);

    internal long UsedMemory(int i) => _snapshot.UsedMemory(i) + _ws!.Memory[i];

    internal long UsedCpu(int i) => _snapshot.UsedCpu(i) + _ws!.Cpu[i];

    internal int UsedSlots(int i) => _snapshot.UsedSlots(i) + _ws!.Slots[i];

    internal IReadOnlyList<PlacedInstance> InstancesOn(int i)
        => _instances is not null && _instances.TryGetValue(i, out var list) ? list : _snapshot.NodeArray[i].Allocated;

    internal int ReadyCount(string deployment)
        => _snapshot.ReadyCount(deployment) + (_readyDelta is null ? 0 : _readyDelta.GetValueOrDefault(deployment));

    internal void Add(int i, PlacedInstance instance) => Apply(i, instance, +1);

    internal void Remove(int i, PlacedInstance instance) => Apply(i, instance, -1);

    private void Apply(int i, PlacedInstance instance, int sign)
    {
        var ws = _ws!;
        if (ws.Memory[i] == 0 && ws.Cpu[i] == 0 && ws.Slots[i] == 0)
        {
            ws.Touched.Add(i);
        }

        ws.Memory[i] += sign * instance.MemoryBytes;
        ws.Cpu[i] += sign * instance.CpuWeight;
        ws.Slots[i] += sign;

        _instances ??= [];
        if (!_instances.TryGetValue(i, out var list))
        {
            _instances[i] = list = new List<PlacedInstance>(_snapshot.NodeArray[i].Allocated);
        }

        if (sign > 0)
        {
            list.Add(instance);
        }
        else
        {
            list.Remove(instance);
        }

        if (string.Equals(instance.Deployment, Request.Deployment, StringComparison.Ordinal))
        {
            if (!_ownPerNodeCopied)
            {
                _ownPerNode = _ownPerNode is null ? [] : new Dictionary<int, int>(_ownPerNode);
                _ownPerNodeCopied = true;
            }

            _ownPerNode![i] = _ownPerNode.GetValueOrDefault(i) + sign;
        }

        if (_snapshot.NodeArray[i].Status == NodeStatus.Ready)
        {
            _readyDelta ??= new Dictionary<string, int>(StringComparer.Ordinal);
            _readyDelta[instance.Deployment] = _readyDelta.GetValueOrDefault(instance.Deployment) + sign;
        }

        CountTerms(i, instance, sign);
    }

    private void CountTerms(int nodeIndex, PlacedInstance instance, int sign)
    {
        foreach (var t in Terms)
        {
            if (!t.Term.Matches(instance.Labels))
            {
                continue;
            }

            t.Total += sign;
            var domain = TopologyValue(_snapshot.NodeArray[nodeIndex], t.Term.TopologyKey);
            if (domain is not null)
            {
                t.Counts[domain] = t.Counts.GetValueOrDefault(domain) + sign;
            }
        }
    }

    internal void Release()
    {
        var ws = _ws;
        if (ws is null)
        {
            return;
        }

        foreach (int i in ws.Touched)
        {
            ws.Memory[i] = 0;
            ws.Cpu[i] = 0;
            ws.Slots[i] = 0;
        }

        ws.Touched.Clear();
        _ws = null;
        t_workspace = ws;
    }

    private sealed class Workspace(int n)
    {
        public readonly long[] Memory = new long[n];
        public readonly long[] Cpu = new long[n];
        public readonly int[] Slots = new int[n];
        public readonly List<int> Touched = [];
    }
}

internal sealed class TermState
{
    public TermState(AffinityTerm term, bool anti, IReadOnlyDictionary<string, string> ownLabels)
    {
        Term = term;
        Anti = anti;
        SelfMatch = term.Matches(ownLabels);
        string selector = term.Selector();
        MissingTopologyReason = $"node has no topology label {term.TopologyKey}";
        Reason = anti
            ? $"required anti-affinity {selector} per {term.TopologyKey} violated"
            : $"required affinity {selector} per {term.TopologyKey} not satisfied";
    }

    public AffinityTerm Term { get; }

    public bool Anti { get; }

    public bool SelfMatch { get; }

    public string Reason { get; }

    public string MissingTopologyReason { get; }

    public Dictionary<string, int> Counts { get; } = new(StringComparer.Ordinal);

    public int Total { get; set; }
}
