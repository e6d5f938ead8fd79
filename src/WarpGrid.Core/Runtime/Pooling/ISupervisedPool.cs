namespace WarpGrid.Core.Runtime.Pooling;

/// <summary>
/// What the node's supervisor (<see cref="Health.DeploymentSupervisor"/>) sizes and holds back in any deployment's
/// pool: a WAGI <see cref="InstancePool"/> or a <c>wasi:http</c> <see cref="Components.ComponentHttpPool"/>.
/// </summary>
public interface ISupervisedPool
{
    /// <summary>The pool's settings.</summary>
    PoolSettings Settings { get; }

    /// <summary>Current counters.</summary>
    PoolStats Stats { get; }

    /// <summary>
    /// Total time spent running requests, in <see cref="System.Diagnostics.Stopwatch"/> ticks: its rate of change is
    /// the mean request concurrency, which the autoscaler reads.
    /// </summary>
    long BusyTicks { get; }

    /// <summary>Health probes running now: each holds an instance and counts as busy in <see cref="Stats"/>, but is not load.</summary>
    int ProbesInFlight { get; }

    /// <summary>
    /// While set and in the future, the pool creates no instance (crash-loop back-off): a request that finds no ready
    /// instance is refused at once. Null lifts the block.
    /// </summary>
    DateTimeOffset? CreationBlockedUntil { get; set; }

    /// <summary>
    /// Sets how many instances the pool keeps warm (the autoscaler's decision), clamped to [<c>min_instances</c>,
    /// <c>max_instances</c>]; returns the live count afterwards.
    /// </summary>
    int SetWarmTarget(int target);
}
