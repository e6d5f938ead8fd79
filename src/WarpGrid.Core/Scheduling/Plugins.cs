namespace WarpGrid.Core.Scheduling;

/// <summary>Places instances onto nodes. The default is <see cref="PipelineScheduler"/>; replace it with <c>UseScheduler&lt;T&gt;()</c>.</summary>
public interface IScheduler
{
    /// <summary>Places <see cref="PlacementRequest.Instances"/> instances. Deterministic: the same inputs give the same result.</summary>
    PlacementResult Schedule(ClusterSnapshot snapshot, PlacementRequest request);

    /// <summary>Schedules, and also reports every node's filter verdicts and scores.</summary>
    SchedulingExplanation Explain(ClusterSnapshot snapshot, PlacementRequest request);
}

/// <summary>
/// A filter: rejects nodes an instance cannot run on. Called once per node per instance on the hot path: do not allocate
/// (return cached reason strings) and keep it cheap.
/// </summary>
public interface IFilterPlugin
{
    /// <summary>The plugin's name; configuration (<see cref="SchedulerOptions.DisabledPlugins"/>) refers to it.</summary>
    string Name { get; }

    /// <summary>Whether the instance described by <paramref name="context"/> may run on <paramref name="node"/>.</summary>
    FilterResult Filter(PlacementContext context, in NodeState node);
}

/// <summary>A score plugin: rates nodes that passed every filter, 0 (worst) to 100 (best). Multiplied by its weight.</summary>
public interface IScorePlugin
{
    /// <summary>The plugin's name; configuration (<see cref="SchedulerOptions.ScoreWeights"/>) refers to it.</summary>
    string Name { get; }

    /// <summary>The node's score for the instance described by <paramref name="context"/>, 0..100 (clamped).</summary>
    long Score(PlacementContext context, in NodeState node);
}

/// <summary>A filter's verdict.</summary>
public readonly struct FilterResult
{
    private FilterResult(string? reason, bool preemptible)
    {
        Reason = reason;
        ResolvableByPreemption = preemptible;
    }

    /// <summary>The node passes.</summary>
    public static FilterResult Pass => default;

    /// <summary>Whether the node passed.</summary>
    public bool Passed => Reason is null;

    /// <summary>Why the node failed; grouped verbatim in explanations, so keep it free of per-node detail.</summary>
    public string? Reason { get; }

    /// <summary>Whether evicting lower-priority instances from the node could make it pass (resource shortages).</summary>
    public bool ResolvableByPreemption { get; }

    /// <summary>The node fails for <paramref name="reason"/>.</summary>
    public static FilterResult Fail(string reason, bool resolvableByPreemption = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        return new FilterResult(reason, resolvableByPreemption);
    }
}

/// <summary>A node together with the working usage of the placement in progress (earlier instances of the same request included).</summary>
public readonly struct NodeState
{
    private readonly PlacementContext _context;

    internal NodeState(PlacementContext context, int index)
    {
        _context = context;
        Index = index;
        Node = context.Snapshot.NodeArray[index];
    }

    /// <summary>The node.</summary>
    public SchedulerNode Node { get; }

    /// <summary>The node's position in <see cref="ClusterSnapshot.Nodes"/>.</summary>
    public int Index { get; }

    /// <summary>Memory reserved on the node, including instances placed earlier in this request and minus evictions.</summary>
    public long UsedMemoryBytes => _context.UsedMemory(Index);

    /// <summary>CPU weight reserved on the node.</summary>
    public long UsedCpuWeight => _context.UsedCpu(Index);

    /// <summary>Instance slots used on the node.</summary>
    public int UsedSlots => _context.UsedSlots(Index);

    /// <summary>Instances on the node now (snapshot, plus this request's placements, minus evictions).</summary>
    public IReadOnlyList<PlacedInstance> Instances => _context.InstancesOn(Index);
}
