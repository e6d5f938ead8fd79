namespace WarpGrid.Core.Scheduling;

/// <summary>Rejects nodes that are not <see cref="NodeStatus.Ready"/>, are draining or are cordoned.</summary>
public sealed class NodeReadyFilter : IFilterPlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "NodeReady";

    /// <inheritdoc />
    public string Name => PluginName;

    /// <inheritdoc />
    public FilterResult Filter(PlacementContext context, in NodeState node)
    {
        var n = node.Node;
        if (n.Status != NodeStatus.Ready)
        {
            return FilterResult.Fail(n.Status == NodeStatus.Lost ? "node lost" : "node not ready");
        }

        if (n.Draining)
        {
            return FilterResult.Fail("node draining");
        }

        return n.Cordoned ? FilterResult.Fail("node cordoned") : FilterResult.Pass;
    }
}

/// <summary>Rejects nodes without free memory, CPU weight or an instance slot for one more instance. Resolvable by preemption.</summary>
public sealed class ResourceFitFilter : IFilterPlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "ResourceFit";

    /// <inheritdoc />
    public string Name => PluginName;

    /// <inheritdoc />
    public FilterResult Filter(PlacementContext context, in NodeState node)
    {
        var capacity = node.Node.Capacity;
        var request = context.Request;
        if (node.UsedSlots + 1 > capacity.InstanceSlots)
        {
            return FilterResult.Fail("no free instance slot", resolvableByPreemption: true);
        }

        if (node.UsedMemoryBytes + request.MemoryBytes > capacity.MemoryBytes)
        {
            return FilterResult.Fail("insufficient memory", resolvableByPreemption: true);
        }

        if (node.UsedCpuWeight + request.CpuWeight > capacity.CpuWeight)
        {
            return FilterResult.Fail("insufficient cpu", resolvableByPreemption: true);
        }

        return FilterResult.Pass;
    }
}

/// <summary>Rejects nodes that do not carry every label of <see cref="PlacementRequest.NodeSelector"/>.</summary>
public sealed class NodeSelectorFilter : IFilterPlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "NodeSelector";

    /// <inheritdoc />
    public string Name => PluginName;

    /// <inheritdoc />
    public FilterResult Filter(PlacementContext context, in NodeState node)
    {
        var labels = node.Node.Labels;
        foreach (var (key, value, reason) in context.Selector)
        {
            if (!labels.TryGetValue(key, out var actual) || !string.Equals(actual, value, StringComparison.Ordinal))
            {
                return FilterResult.Fail(reason);
            }
        }

        return FilterResult.Pass;
    }
}

/// <summary>
/// Taints and tolerations: rejects nodes with an untolerated <see cref="TaintEffect.NoSchedule"/> or
/// <see cref="TaintEffect.NoExecute"/> taint; scores down nodes with untolerated <see cref="TaintEffect.PreferNoSchedule"/>
/// taints (100 − 50 per taint, at least 0).
/// </summary>
public sealed class TaintTolerationPlugin : IFilterPlugin, IScorePlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "TaintToleration";

    /// <inheritdoc cref="IFilterPlugin.Name" />
    public string Name => PluginName;

    /// <inheritdoc />
    public FilterResult Filter(PlacementContext context, in NodeState node)
    {
        var taints = node.Node.Taints;
        for (int i = 0; i < taints.Count; i++)
        {
            var taint = taints[i];
            if (taint.Effect != TaintEffect.PreferNoSchedule && !Tolerated(context.Tolerations, taint))
            {
                return FilterResult.Fail(taint.NotToleratedReason);
            }
        }

        return FilterResult.Pass;
    }

    /// <inheritdoc />
    public long Score(PlacementContext context, in NodeState node)
    {
        var taints = node.Node.Taints;
        long score = 100;
        for (int i = 0; i < taints.Count; i++)
        {
            var taint = taints[i];
            if (taint.Effect == TaintEffect.PreferNoSchedule && !Tolerated(context.Tolerations, taint))
            {
                score -= 50;
            }
        }

        return Math.Max(0, score);
    }

    private static bool Tolerated(Toleration[] tolerations, Taint taint)
    {
        foreach (var t in tolerations)
        {
            if (t.Tolerates(taint))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// Affinity and anti-affinity between deployments by label, per topology domain. Required terms filter; preferred terms
/// score: (Σ weights of satisfied affinity + Σ weights of unviolated anti-affinity) × 100 / Σ all preferred weights.
/// </summary>
public sealed class AffinityPlugin : IFilterPlugin, IScorePlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "Affinity";

    /// <inheritdoc cref="IFilterPlugin.Name" />
    public string Name => PluginName;

    /// <inheritdoc />
    public FilterResult Filter(PlacementContext context, in NodeState node)
    {
        if (!context.HasRequiredTerms)
        {
            return FilterResult.Pass;
        }

        foreach (var t in context.Terms)
        {
            if (!t.Term.Required)
            {
                continue;
            }

            int count = t.CountOn(node.Index);
            if (t.Anti)
            {
                if (count > 0)
                {
                    return FilterResult.Fail(t.Reason);
                }
            }
            else
            {
                if (count < 0)
                {
                    return FilterResult.Fail(t.MissingTopologyReason);
                }

                // The first instance of a group that matches its own term may go anywhere (as in Kubernetes).
                if (count == 0 && !(t.Total == 0 && t.SelfMatch))
                {
                    return FilterResult.Fail(t.Reason);
                }
            }
        }

        return FilterResult.Pass;
    }

    /// <inheritdoc />
    public long Score(PlacementContext context, in NodeState node)
    {
        if (!context.HasPreferredTerms)
        {
            return 0;
        }

        long earned = 0;
        foreach (var t in context.Terms)
        {
            if (t.Term.Required)
            {
                continue;
            }

            bool present = t.CountOn(node.Index) > 0;
            if (present != t.Anti)
            {
                earned += Math.Clamp(t.Term.Weight, 1, 100);
            }
        }

        return earned * 100 / (context.PreferredWeight + context.PreferredAntiWeight);
    }
}

/// <summary>
/// Scores by resource use after placing the instance, averaged over memory, CPU weight and slots:
/// bin-pack (most-allocated) scores used/capacity × 100; spread (least-allocated) scores free/capacity × 100.
/// </summary>
public sealed class ResourceAllocationScore : IScorePlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "ResourceAllocation";

    /// <inheritdoc />
    public string Name => PluginName;

    /// <inheritdoc />
    public long Score(PlacementContext context, in NodeState node)
    {
        var capacity = node.Node.Capacity;
        var request = context.Request;
        long sum = 0;
        int dims = 0;
        Add(node.UsedMemoryBytes + request.MemoryBytes, capacity.MemoryBytes, ref sum, ref dims);
        Add(node.UsedCpuWeight + request.CpuWeight, capacity.CpuWeight, ref sum, ref dims);
        Add(node.UsedSlots + 1L, capacity.InstanceSlots, ref sum, ref dims);
        long used = dims == 0 ? 0 : sum / dims;
        return context.Strategy == ScoringStrategy.Spread ? 100 - used : used;
    }

    private static void Add(long used, long capacity, ref long sum, ref int dims)
    {
        if (capacity <= 0)
        {
            return;
        }

        sum += (long)Math.Clamp((double)used * 100 / capacity, 0, 100);
        dims++;
    }
}

/// <summary>With the spread strategy, prefers nodes with fewer instances of the same deployment: 100 / (1 + count). Bin-pack: 0.</summary>
public sealed class DeploymentSpreadScore : IScorePlugin
{
    /// <summary>The plugin name.</summary>
    public const string PluginName = "DeploymentSpread";

    /// <inheritdoc />
    public string Name => PluginName;

    /// <inheritdoc />
    public long Score(PlacementContext context, in NodeState node)
        => context.Strategy == ScoringStrategy.Spread ? 100 / (1 + context.OwnInstancesOn(node.Index)) : 0;
}
