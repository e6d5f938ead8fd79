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
    private List<(int Node, PlacedInstance Instance, int Sign)>? _changes;
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
        foreach (var t in Terms)
        {
            (t.DomainOfNode, int count) = snapshot.Domains(t.Term.TopologyKey);
            t.Counts = new int[count];
            CountExisting(t);
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

        if (snapshot.PerNodeCounts(request.Deployment) is { } own)
        {
            foreach (var (node, count) in own)
            {
                _ws.Own[node] = count;
                _ws.OwnTouched.Add(node);
            }
        }
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
    public int OwnInstancesOn(int nodeIndex) => _ws!.Own[nodeIndex];

    internal long UsedMemory(int i) => _snapshot.UsedMemory(i) + _ws!.Memory[i];

    internal long UsedCpu(int i) => _snapshot.UsedCpu(i) + _ws!.Cpu[i];

    internal int UsedSlots(int i) => _snapshot.UsedSlots(i) + _ws!.Slots[i];

    /// <summary>Working usage deltas (this request's placements minus evictions), indexed by node.</summary>
    internal long[] DeltaMemory => _ws!.Memory;

    internal long[] DeltaCpu => _ws!.Cpu;

    internal int[] DeltaSlots => _ws!.Slots;

    internal int[] OwnCounts => _ws!.Own;

    internal IReadOnlyList<PlacedInstance> InstancesOn(int i)
    {
        var allocated = _snapshot.NodeArray[i].Allocated;
        if (_changes is null)
        {
            return allocated;
        }

        List<PlacedInstance>? list = null;
        foreach (var (node, instance, sign) in _changes)
        {
            if (node != i)
            {
                continue;
            }

            list ??= new List<PlacedInstance>(allocated);
            if (sign > 0)
            {
                list.Add(instance);
            }
            else
            {
                list.Remove(instance);
            }
        }

        return list ?? allocated;
    }

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

        (_changes ??= []).Add((i, instance, sign));
        if (string.Equals(instance.Deployment, Request.Deployment, StringComparison.Ordinal))
        {
            if (ws.Own[i] == 0)
            {
                ws.OwnTouched.Add(i);
            }

            ws.Own[i] += sign;
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
            if (t.Term.Matches(instance.Labels))
            {
                t.Add(nodeIndex, sign);
            }
        }
    }

    /// <summary>Counts the snapshot's instances matching <paramref name="t"/>, through the snapshot's label index.</summary>
    private void CountExisting(TermState t)
    {
        using var e = t.Term.MatchLabels.GetEnumerator();
        if (!e.MoveNext())
        {
            // An empty selector matches every instance.
            var nodes = _snapshot.NodeArray;
            for (int i = 0; i < nodes.Length; i++)
            {
                for (int j = 0; j < nodes[i].Allocated.Count; j++)
                {
                    t.Add(i, +1);
                }
            }

            return;
        }

        var first = e.Current;
        if (_snapshot.WithLabel(first.Key, first.Value) is not { } candidates)
        {
            return;
        }

        foreach (var (node, instance) in candidates)
        {
            if (t.Term.Matches(instance.Labels))
            {
                t.Add(node, +1);
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
        foreach (int i in ws.OwnTouched)
        {
            ws.Own[i] = 0;
        }

        ws.OwnTouched.Clear();
        _ws = null;
        t_workspace = ws;
    }

    private sealed class Workspace(int n)
    {
        public readonly long[] Memory = new long[n];
        public readonly long[] Cpu = new long[n];
        public readonly int[] Slots = new int[n];
        public readonly int[] Own = new int[n];
        public readonly List<int> Touched = [];
        public readonly List<int> OwnTouched = [];
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

    /// <summary>Per node, its domain id for the term's topology key; −1 when the node lacks the label.</summary>
    public int[] DomainOfNode { get; set; } = [];

    /// <summary>Matching instances per domain id.</summary>
    public int[] Counts { get; set; } = [];

    public int Total { get; set; }

    /// <summary>Matching instances in the domain of node <paramref name="nodeIndex"/>; −1 when it has no such domain.</summary>
    public int CountOn(int nodeIndex)
    {
        int d = DomainOfNode[nodeIndex];
        return d < 0 ? -1 : Counts[d];
    }

    public void Add(int nodeIndex, int sign)
    {
        Total += sign;
        int d = DomainOfNode[nodeIndex];
        if (d >= 0)
        {
            Counts[d] += sign;
        }
    }
}
