using Microsoft.Extensions.Options;

namespace WarpGrid.Core.Scheduling;

/// <summary>
/// The default <see cref="IScheduler"/>: for each instance, filter → score → select (highest weighted score, ties to the
/// ordinally smallest node name) → bind into a working copy, and preempt lower priorities when nothing fits.
/// See docs/scheduler.md.
/// </summary>
public sealed class PipelineScheduler : IScheduler
{
    private readonly IFilterPlugin[] _filters;
    private readonly IScorePlugin[] _scorers;
    private readonly int[] _weights;
    private readonly SchedulerOptions _options;
    private readonly FastPlan _plan;

    /// <summary>Creates a scheduler from the registered plugins (in registration order) and options.</summary>
    /// <exception cref="ArgumentException">Two plugins of the same kind share a name, or a weight is negative.</exception>
    public PipelineScheduler(IEnumerable<IFilterPlugin> filters, IEnumerable<IScorePlugin> scorers, IOptions<SchedulerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(filters);
        ArgumentNullException.ThrowIfNull(scorers);
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _filters = filters.Where(f => !_options.DisabledPlugins.Contains(f.Name)).ToArray();
        var scoring = new List<IScorePlugin>();
        var weights = new List<int>();
        foreach (var s in scorers)
        {
            int weight = _options.ScoreWeights.TryGetValue(s.Name, out var w) ? w : 1;
            if (weight < 0)
            {
                throw new ArgumentException($"WarpGrid:Scheduler:ScoreWeights:{s.Name} must be 0 or more, was {weight}.", nameof(options));
            }

            if (weight > 0 && !_options.DisabledPlugins.Contains(s.Name))
            {
                scoring.Add(s);
                weights.Add(weight);
            }
        }

        _scorers = scoring.ToArray();
        _weights = weights.ToArray();
        ThrowOnDuplicates(_filters.Select(f => f.Name), "filter");
        ThrowOnDuplicates(_scorers.Select(s => s.Name), "score");
        _plan = new FastPlan(_filters, _scorers, _weights);
    }

    /// <summary>The built-in filters, in pipeline order.</summary>
    public static IReadOnlyList<IFilterPlugin> BuiltInFilters() =>
        [new NodeReadyFilter(), new NodeSelectorFilter(), new TaintTolerationPlugin(), new ResourceFitFilter(), new AffinityPlugin()];

    /// <summary>The built-in score plugins.</summary>
    public static IReadOnlyList<IScorePlugin> BuiltInScorers() =>
        [new ResourceAllocationScore(), new DeploymentSpreadScore(), new TaintTolerationPlugin(), new AffinityPlugin()];

    /// <summary>A scheduler with the built-in plugins, plus <paramref name="extraFilters"/> and <paramref name="extraScorers"/>.</summary>
    public static PipelineScheduler CreateDefault(SchedulerOptions? options = null, IEnumerable<IFilterPlugin>? extraFilters = null, IEnumerable<IScorePlugin>? extraScorers = null)
        => new(
            BuiltInFilters().Concat(extraFilters ?? []),
            BuiltInScorers().Concat(extraScorers ?? []),
            Options.Create(options ?? new SchedulerOptions()));

    /// <summary>The active filters, in order.</summary>
    public IReadOnlyList<IFilterPlugin> Filters => _filters;

    /// <summary>The active score plugins.</summary>
    public IReadOnlyList<IScorePlugin> Scorers => _scorers;

    /// <inheritdoc />
    public PlacementResult Schedule(ClusterSnapshot snapshot, PlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Validate(request);
        var context = new PlacementContext(snapshot, request, EffectiveStrategy(request));
        try
        {
            return Run(context);
        }
        finally
        {
            context.Release();
        }
    }

    /// <inheritdoc />
    public SchedulingExplanation Explain(ClusterSnapshot snapshot, PlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Validate(request);
        var nodes = new List<NodeExplanation>(snapshot.Nodes.Count);
        var context = new PlacementContext(snapshot, request, EffectiveStrategy(request));
        try
        {
            for (int i = 0; i < snapshot.Nodes.Count; i++)
            {
                var state = new NodeState(context, i);
                var filters = new List<FilterOutcome>(_filters.Length);
                bool feasible = true;
                foreach (var f in _filters)
                {
                    var r = f.Filter(context, state);
                    feasible &= r.Passed;
                    filters.Add(new FilterOutcome(f.Name, r.Passed, r.Reason));
                }

                var scores = new List<ScoreOutcome>();
                long? total = null;
                if (feasible)
                {
                    long sum = 0;
                    for (int s = 0; s < _scorers.Length; s++)
                    {
                        long score = Math.Clamp(_scorers[s].Score(context, state), 0, 100);
                        scores.Add(new ScoreOutcome(_scorers[s].Name, score, _weights[s]));
                        sum += score * _weights[s];
                    }

                    total = sum;
                }

                nodes.Add(new NodeExplanation(state.Node.Name, filters, scores, total));
            }
        }
        finally
        {
            context.Release();
        }

        return new SchedulingExplanation(Schedule(snapshot, request), nodes);
    }

    private PlacementResult Run(PlacementContext context)
    {
        var request = context.Request;
        var nodes = context.Snapshot.NodeArray;
        int n = nodes.Length;
        int toFind = FeasibleNodesToFind(n);
        uint seed = StableHash(request.Deployment);
        var placements = new InstancePlacement[request.Instances];
        var victims = new List<PreemptionVictim>();
        var statics = StaticFilters(context);
        for (int k = 0; k < request.Instances; k++)
        {
            context.InstanceIndex = k;
            long bestScore = long.MinValue;
            int start = n == 0 ? 0 : (int)((seed + (uint)k) % (uint)n);
            int best = Scan(context, statics, start, toFind, ref bestScore);

            bool preempted = false;
            if (best < 0 && _options.EnablePreemption)
            {
                best = TryPreempt(context, statics, victims);
                preempted = best >= 0;
                if (preempted)
                {
                    bestScore = ScoreNode(context, new NodeState(context, best));
                }
            }

            if (best < 0)
            {
                var why = ExplainPending(context, _options.EnablePreemption);
                for (int rest = k; rest < request.Instances; rest++)
                {
                    placements[rest] = new InstancePlacement { Index = rest, Pending = why };
                }

                break;
            }

            var instance = NewInstance(request, k);
            context.Add(best, instance);
            placements[k] = new InstancePlacement { Index = k, NodeName = nodes[best].Name, Instance = instance, Preempted = preempted, Score = bestScore };
        }

        return new PlacementResult(request.Deployment, placements, victims);
    }

    /// <summary>
    /// Scans nodes from <paramref name="start"/> (cyclically, in index order) that pass the usage-independent filters,
    /// checks the usage-dependent ones, scores the feasible ones, and stops after <paramref name="toFind"/> feasible nodes.
    /// Visits the same nodes in the same order, with the same scores, as running every plugin on every node would.
    /// </summary>
    private int Scan(PlacementContext context, StaticFilterResult statics, int start, int toFind, ref long bestScore)
    {
        var plan = _plan;
        var snapshot = context.Snapshot;
        var request = context.Request;
        int[] candidates = statics.Candidates;
        int m = candidates.Length;
        if (m == 0)
        {
            return -1;
        }

        long[] capMem = snapshot.CapacityMemory, capCpu = snapshot.CapacityCpu, usedMem = snapshot.UsedMemoryArray, usedCpu = snapshot.UsedCpuArray;
        int[] capSlots = snapshot.CapacitySlots, usedSlots = snapshot.UsedSlotsArray;
        long[] dMem = context.DeltaMemory, dCpu = context.DeltaCpu;
        int[] dSlots = context.DeltaSlots, own = context.OwnCounts;
        byte[] taintScore = statics.TaintScore;
        long reqMem = request.MemoryBytes, reqCpu = request.CpuWeight;
        bool spread = context.Strategy == ScoringStrategy.Spread;
        bool fit = plan.ResourceFit;
        var affinityFilter = context.HasRequiredTerms ? plan.AffinityFilter : null;
        var affinityScorer = context.HasPreferredTerms ? plan.AffinityScorer : null;
        var customFilters = plan.CustomFilters;
        var customScorers = plan.CustomScorers;
        int raWeight = plan.AllocationWeight, dsWeight = spread ? plan.SpreadWeight : 0, ttWeight = plan.TaintWeight;

        int best = -1;
        int feasible = 0;
        int p = Array.BinarySearch(candidates, start);
        if (p < 0)
        {
            p = ~p;
        }

        for (int step = 0; step < m; step++, p++)
        {
            if (p >= m)
            {
                p = 0;
            }

            int i = candidates[p];
            long mem = usedMem[i] + dMem[i] + reqMem;
            long cpu = usedCpu[i] + dCpu[i] + reqCpu;
            long slots = usedSlots[i] + dSlots[i] + 1L;
            if (fit && (slots > capSlots[i] || mem > capMem[i] || cpu > capCpu[i]))
            {
                continue;
            }

            if (affinityFilter is not null && !affinityFilter.Filter(context, new NodeState(context, i)).Passed)
            {
                continue;
            }

            if (customFilters.Length > 0 && !PassesCustom(context, customFilters, i))
            {
                continue;
            }

            long score = 0;
            if (raWeight > 0)
            {
                long sum = 0;
                int dims = 0;
                Allocation(mem, capMem[i], ref sum, ref dims);
                Allocation(cpu, capCpu[i], ref sum, ref dims);
                Allocation(slots, capSlots[i], ref sum, ref dims);
                long used = dims == 0 ? 0 : sum / dims;
                score += Math.Clamp(spread ? 100 - used : used, 0, 100) * raWeight;
            }

            if (dsWeight > 0)
            {
                score += Math.Clamp(100 / (1 + own[i]), 0, 100) * dsWeight;
            }

            score += taintScore[i] * (long)ttWeight;
            if (affinityScorer is not null)
            {
                score += Math.Clamp(affinityScorer.Score(context, new NodeState(context, i)), 0, 100) * plan.AffinityWeight;
            }

            for (int s = 0; s < customScorers.Length; s++)
            {
                score += Math.Clamp(customScorers[s].Score(context, new NodeState(context, i)), 0, 100) * plan.CustomWeights[s];
            }

            if (score > bestScore || (score == bestScore && i < best))
            {
                best = i;
                bestScore = score;
            }

            if (++feasible >= toFind)
            {
                break;
            }
        }

        return best;

        static bool PassesCustom(PlacementContext context, IFilterPlugin[] filters, int i)
        {
            var state = new NodeState(context, i);
            foreach (var f in filters)
            {
                if (!f.Filter(context, state).Passed)
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>Same arithmetic as <see cref="ResourceAllocationScore"/>.</summary>
    private static void Allocation(long used, long capacity, ref long sum, ref int dims)
    {
        if (capacity <= 0)
        {
            return;
        }

        sum += (long)Math.Clamp((double)used * 100 / capacity, 0, 100);
        dims++;
    }

    /// <summary>
    /// The nodes passing the filters that depend only on the node and the request (readiness, node selector, taints), in
    /// index order, with their taint score; cached in the snapshot per (active plugins, selector, tolerations).
    /// </summary>
    private StaticFilterResult StaticFilters(PlacementContext context)
    {
        var plan = _plan;
        var key = new System.Text.StringBuilder();
        key.Append(plan.Ready ? 'R' : '-').Append(plan.Selector ? 'S' : '-').Append(plan.TaintFilter ? 'T' : '-').Append('|');
        if (plan.Selector)
        {
            foreach (var (k, v, _) in context.Selector)
            {
                key.Append(k).Append('\0').Append(v).Append('\0');
            }
        }

        key.Append('|');
        if (plan.TaintFilter || plan.TaintWeight > 0)
        {
            foreach (var t in context.Tolerations)
            {
                key.Append(t.Key).Append('\0').Append(t.Value).Append('\0').Append(t.Effect is { } e ? (int)e : -1).Append('\0').Append((int)t.Operator).Append('\0');
            }
        }

        return context.Snapshot.StaticFilter(key.ToString(), () =>
        {
            var nodes = context.Snapshot.NodeArray;
            var candidates = new List<int>(nodes.Length);
            var taintScore = new byte[nodes.Length];
            var taints = new TaintTolerationPlugin();
            for (int i = 0; i < nodes.Length; i++)
            {
                var state = new NodeState(context, i);
                taintScore[i] = (byte)Math.Clamp(taints.Score(context, state), 0, 100);
                bool pass = true;
                foreach (var f in plan.StaticFilters)
                {
                    if (!f.Filter(context, state).Passed)
                    {
                        pass = false;
                        break;
                    }
                }

                if (pass)
                {
                    candidates.Add(i);
                }
            }

            return new StaticFilterResult(candidates.ToArray(), taintScore);
        });
    }

    private bool PassesFilters(PlacementContext context, in NodeState state)
    {
        foreach (var f in _filters)
        {
            if (!f.Filter(context, state).Passed)
            {
                return false;
            }
        }

        return true;
    }

    private long ScoreNode(PlacementContext context, in NodeState state)
    {
        long sum = 0;
        for (int s = 0; s < _scorers.Length; s++)
        {
            sum += Math.Clamp(_scorers[s].Score(context, state), 0, 100) * _weights[s];
        }

        return sum;
    }

    /// <summary>
    /// Finds the node where evicting the fewest strictly-lower-priority instances (then the lowest total victim priority,
    /// then the smallest node name) lets the instance pass every filter, honouring victims' min-available budgets.
    /// Evicts them in the working copy and returns the node index, or −1.
    /// </summary>
    private int TryPreempt(PlacementContext context, StaticFilterResult statics, List<PreemptionVictim> victims)
    {
        var nodes = context.Snapshot.NodeArray;
        var candidates = new List<(int Node, List<PlacedInstance> Victims, long PrioritySum)>();

        // Nodes failing readiness, selector or taints cannot be helped by evictions: only the static survivors are tried.
        foreach (int i in statics.Candidates)
        {
            var state = new NodeState(context, i);
            bool resolvable = true;
            bool anyFailure = false;
            foreach (var f in _filters)
            {
                var r = f.Filter(context, state);
                if (!r.Passed)
                {
                    anyFailure = true;
                    if (!r.ResolvableByPreemption)
                    {
                        resolvable = false;
                        break;
                    }
                }
            }

            if (!resolvable || !anyFailure)
            {
                continue;
            }

            var chosen = ChooseVictims(context, state);
            if (chosen is not null)
            {
                long sum = 0;
                foreach (var v in chosen)
                {
                    sum += v.Priority;
                }

                candidates.Add((i, chosen, sum));
            }
        }

        candidates.Sort(static (a, b) =>
        {
            int c = a.Victims.Count.CompareTo(b.Victims.Count);
            if (c == 0)
            {
                c = a.PrioritySum.CompareTo(b.PrioritySum);
            }

            return c != 0 ? c : a.Node.CompareTo(b.Node);
        });

        foreach (var (node, chosen, _) in candidates)
        {
            foreach (var v in chosen)
            {
                context.Remove(node, v);
            }

            if (PassesFilters(context, new NodeState(context, node)))
            {
                foreach (var v in chosen)
                {
                    victims.Add(new PreemptionVictim(nodes[node].Name, v));
                }

                return node;
            }

            foreach (var v in chosen)
            {
                context.Add(node, v);
            }
        }

        return -1;
    }

    /// <summary>Greedy: repeatedly evict the allowed lower-priority instance that covers most of the remaining shortage; then give back those not needed.</summary>
    private static List<PlacedInstance>? ChooseVictims(PlacementContext context, in NodeState state)
    {
        var request = context.Request;
        var capacity = state.Node.Capacity;
        long needMem = state.UsedMemoryBytes + request.MemoryBytes - capacity.MemoryBytes;
        long needCpu = state.UsedCpuWeight + request.CpuWeight - capacity.CpuWeight;
        long needSlots = state.UsedSlots + 1L - capacity.InstanceSlots;
        if (request.MemoryBytes > capacity.MemoryBytes || request.CpuWeight > capacity.CpuWeight || capacity.InstanceSlots < 1)
        {
            return null;
        }

        var pool = new List<PlacedInstance>();
        foreach (var instance in state.Instances)
        {
            if (instance.Priority < request.Priority)
            {
                pool.Add(instance);
            }
        }

        pool.Sort(static (a, b) =>
        {
            int c = a.Priority.CompareTo(b.Priority);
            return c != 0 ? c : string.CompareOrdinal(a.InstanceId, b.InstanceId);
        });

        var chosen = new List<PlacedInstance>();
        var evicted = new Dictionary<string, int>(StringComparer.Ordinal);
        long mem = needMem, cpu = needCpu, slots = needSlots;
        while (mem > 0 || cpu > 0 || slots > 0)
        {
            int pick = -1;
            double pickValue = 0;
            for (int j = 0; j < pool.Count; j++)
            {
                var v = pool[j];
                if (context.ReadyCount(v.Deployment) - evicted.GetValueOrDefault(v.Deployment) - 1 < Math.Max(v.MinAvailable, context.Snapshot.Budget(v.Deployment)))
                {
                    continue;
                }

                double value = Cover(v.MemoryBytes, mem, needMem) + Cover(v.CpuWeight, cpu, needCpu) + Cover(1, slots, needSlots);
                if (value > pickValue)
                {
                    pick = j;
                    pickValue = value;
                }
            }

            if (pick < 0)
            {
                return null;
            }

            var victim = pool[pick];
            pool.RemoveAt(pick);
            chosen.Add(victim);
            evicted[victim.Deployment] = evicted.GetValueOrDefault(victim.Deployment) + 1;
            mem -= victim.MemoryBytes;
            cpu -= victim.CpuWeight;
            slots--;
        }

        // Reprieve: keep the highest-priority victims that turn out not to be needed.
        for (int j = chosen.Count - 1; j >= 0; j--)
        {
            var v = chosen[j];
            if (mem + v.MemoryBytes <= 0 && cpu + v.CpuWeight <= 0 && slots + 1 <= 0)
            {
                chosen.RemoveAt(j);
                mem += v.MemoryBytes;
                cpu += v.CpuWeight;
                slots++;
            }
        }

        return chosen;

        static double Cover(long amount, long remaining, long total)
            => remaining <= 0 || total <= 0 ? 0 : (double)Math.Min(amount, remaining) / total;
    }

    private PlacementExplanation ExplainPending(PlacementContext context, bool preemptionAttempted)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < context.Snapshot.NodeArray.Length; i++)
        {
            var state = new NodeState(context, i);
            foreach (var f in _filters)
            {
                var r = f.Filter(context, state);
                if (!r.Passed)
                {
                    counts[r.Reason!] = counts.GetValueOrDefault(r.Reason!) + 1;
                    break;
                }
            }
        }

        var reasons = counts.Select(p => new ReasonCount(p.Key, p.Value)).ToList();
        reasons.Sort(static (a, b) =>
        {
            int c = b.NodeCount.CompareTo(a.NodeCount);
            return c != 0 ? c : string.CompareOrdinal(a.Reason, b.Reason);
        });
        return new PlacementExplanation(reasons, preemptionAttempted);
    }

    private static PlacedInstance NewInstance(PlacementRequest request, int index) => new()
    {
        InstanceId = request.Deployment + "#" + index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        Deployment = request.Deployment,
        Priority = request.Priority,
        MemoryBytes = request.MemoryBytes,
        CpuWeight = request.CpuWeight,
        Labels = request.Labels,
        MinAvailable = request.MinAvailable,
    };

    private int FeasibleNodesToFind(int n)
    {
        int min = Math.Max(1, _options.MinFeasibleNodesToFind);
        if (n <= min)
        {
            return n;
        }

        int percent = _options.PercentageOfNodesToScore;
        if (percent <= 0)
        {
            percent = Math.Max(5, 50 - (n / 125));
        }

        if (percent >= 100)
        {
            return n;
        }

        return Math.Max(min, (int)((long)n * percent / 100));
    }

    private ScoringStrategy EffectiveStrategy(PlacementRequest request)
    {
        var s = request.Strategy == ScoringStrategy.Default ? _options.DefaultStrategy : request.Strategy;
        return s == ScoringStrategy.Default ? ScoringStrategy.Spread : s;
    }

    private static void Validate(PlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.Deployment, nameof(request));
        if (request.Instances < 0 || request.MemoryBytes < 0 || request.CpuWeight < 0)
        {
            throw new ArgumentException($"Deployment '{request.Deployment}': instances, memory and cpu weight must not be negative.", nameof(request));
        }
    }

    private static void ThrowOnDuplicates(IEnumerable<string> names, string kind)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (!seen.Add(name))
            {
                throw new ArgumentException($"Two {kind} plugins are named '{name}'; plugin names must be unique.");
            }
        }
    }

    /// <summary>
    /// The pipeline split for the hot path: the built-in filters that depend only on node and request (run once per
    /// snapshot and request shape), the built-in usage checks (inlined), and everything else (called per node).
    /// </summary>
    private sealed class FastPlan
    {
        public FastPlan(IFilterPlugin[] filters, IScorePlugin[] scorers, int[] weights)
        {
            var statics = new List<IFilterPlugin>();
            var custom = new List<IFilterPlugin>();
            foreach (var f in filters)
            {
                switch (f)
                {
                    case NodeReadyFilter:
                        Ready = true;
                        statics.Add(f);
                        break;
                    case NodeSelectorFilter:
                        Selector = true;
                        statics.Add(f);
                        break;
                    case TaintTolerationPlugin:
                        TaintFilter = true;
                        statics.Add(f);
                        break;
                    case ResourceFitFilter:
                        ResourceFit = true;
                        break;
                    case AffinityPlugin a:
                        AffinityFilter = a;
                        break;
                    default:
                        custom.Add(f);
                        break;
                }
            }

            var customScorers = new List<IScorePlugin>();
            var customWeights = new List<int>();
            for (int s = 0; s < scorers.Length; s++)
            {
                switch (scorers[s])
                {
                    case ResourceAllocationScore:
                        AllocationWeight = weights[s];
                        break;
                    case DeploymentSpreadScore:
                        SpreadWeight = weights[s];
                        break;
                    case TaintTolerationPlugin:
                        TaintWeight = weights[s];
                        break;
                    case AffinityPlugin a:
                        AffinityScorer = a;
                        AffinityWeight = weights[s];
                        break;
                    default:
                        customScorers.Add(scorers[s]);
                        customWeights.Add(weights[s]);
                        break;
                }
            }

            StaticFilters = statics.ToArray();
            CustomFilters = custom.ToArray();
            CustomScorers = customScorers.ToArray();
            CustomWeights = customWeights.ToArray();
        }

        public bool Ready { get; }

        public bool Selector { get; }

        public bool TaintFilter { get; }

        public bool ResourceFit { get; }

        public AffinityPlugin? AffinityFilter { get; }

        public IFilterPlugin[] StaticFilters { get; }

        public IFilterPlugin[] CustomFilters { get; }

        public int AllocationWeight { get; }

        public int SpreadWeight { get; }

        public int TaintWeight { get; }

        public AffinityPlugin? AffinityScorer { get; }

        public int AffinityWeight { get; }

        public IScorePlugin[] CustomScorers { get; }

        public int[] CustomWeights { get; }
    }

    /// <summary>FNV-1a; <see cref="string.GetHashCode()"/> is randomized per process and would break determinism.</summary>
    private static uint StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s)
        {
            h = (h ^ c) * 16777619;
        }

        return h;
    }
}
