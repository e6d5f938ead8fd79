namespace WarpGrid.Core.Scheduling;

/// <summary>One instance to move off a lost or draining node: where to, or why it stays pending.</summary>
/// <param name="Instance">The instance (it keeps its id, resources and labels).</param>
/// <param name="FromNode">The lost or draining node it runs (ran) on.</param>
/// <param name="ToNode">The node chosen by the pipeline, or <see langword="null"/> when pending.</param>
/// <param name="Batch">The batch the move belongs to (0-based); run batches in order, each after the previous one's replacements run.</param>
/// <param name="StartBeforeStop">
/// The deployment is at or below its min-available budget: start the replacement and wait for it before stopping the
/// old instance.
/// </param>
/// <param name="Pending">Why no node takes it; <see langword="null"/> when moved.</param>
public sealed record InstanceMove(PlacedInstance Instance, string FromNode, string? ToNode, int Batch, bool StartBeforeStop, PlacementExplanation? Pending);

/// <summary>The outcome of <see cref="Rescheduler.Reschedule"/>.</summary>
/// <param name="Moves">Every instance on a lost or draining node (or evicted by a NoExecute taint), in the order they were placed.</param>
/// <param name="Victims">Lower-priority instances preempted to make room for moved ones (evict them first).</param>
/// <param name="After">The cluster after every move and eviction: pending drained instances stay on their node.</param>
public sealed record RescheduleResult(IReadOnlyList<InstanceMove> Moves, IReadOnlyList<PreemptionVictim> Victims, ClusterSnapshot After);

/// <summary>
/// Moves instances off <see cref="NodeStatus.Lost"/> and <see cref="SchedulerNode.Draining"/> nodes, and instances on a
/// node with a <see cref="TaintEffect.NoExecute"/> taint their deployment does not tolerate (like a drain of those
/// instances only), through the normal pipeline of an <see cref="IScheduler"/>, so every filter (resources, taints,
/// selectors, (anti-)affinity) holds. Not-ready and cordoned nodes keep their instances and take no new ones. See docs/scheduler.md, "Rescheduling".
/// </summary>
public sealed class Rescheduler
{
    private readonly IScheduler _scheduler;

    /// <summary>Creates a rescheduler that places through <paramref name="scheduler"/>.</summary>
    public Rescheduler(IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        _scheduler = scheduler;
    }

    /// <summary>
    /// Computes the moves. <paramref name="deployments"/> gives each deployment's request (its node selector,
    /// tolerations, affinity and strategy); a deployment missing from it is placed with no constraints beyond resources.
    /// </summary>
    public RescheduleResult Reschedule(ClusterSnapshot snapshot, IReadOnlyDictionary<string, PlacementRequest>? deployments = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var state = new ClusterState(snapshot.Nodes);
        var work = new List<(SchedulerNode Node, PlacedInstance Instance, bool Lost)>();
        foreach (var node in snapshot.Nodes)
        {
            bool lost = node.Status == NodeStatus.Lost;
            PlacedInstance[] instances;
            if (lost || node.Draining)
            {
                instances = node.Allocated.ToArray();
            }
            else if (HasNoExecute(node))
            {
                // A NoExecute taint evicts the instances whose deployment does not tolerate it; they move like drained ones.
                instances = node.Allocated.Where(i => !Tolerated(node, deployments is not null && deployments.TryGetValue(i.Deployment, out var r) ? r.Tolerations : [])).ToArray();
            }
            else
            {
                continue;
            }

            Array.Sort(instances, static (a, b) =>
            {
                int c = b.Priority.CompareTo(a.Priority);
                return c != 0 ? c : string.CompareOrdinal(a.InstanceId, b.InstanceId);
            });
            foreach (var instance in instances)
            {
                work.Add((node, instance, lost));
            }
        }

        // Lost instances are gone: they leave the model before anything is placed.
        foreach (var (node, instance, lost) in work)
        {
            if (lost)
            {
                state.Evict(node.Name, instance);
            }
        }

        // Drain budget per deployment: disruptions allowed = running on ready nodes (lost ones excluded) − min-available.
        var moved = new Dictionary<string, int>(StringComparer.Ordinal);
        var moves = new List<InstanceMove>(work.Count);
        var victims = new List<PreemptionVictim>();
        foreach (var (node, instance, lost) in work)
        {
            int batch = 0;
            bool surge = false;
            var template = deployments is not null && deployments.TryGetValue(instance.Deployment, out var t) ? t : null;
            if (!lost)
            {
                int budget = Math.Max(snapshot.Budget(instance.Deployment), Math.Max(instance.MinAvailable, template?.MinAvailable ?? 0));
                int allowed = snapshot.ReadyCount(instance.Deployment) - budget;
                surge = allowed <= 0;
                int done = moved.GetValueOrDefault(instance.Deployment);
                batch = done / Math.Max(1, allowed);
                moved[instance.Deployment] = done + 1;
                state.Evict(node.Name, instance);
            }

            var request = (template ?? new PlacementRequest { Deployment = instance.Deployment }) with
            {
                Instances = 1,
                Priority = instance.Priority,
                MemoryBytes = instance.MemoryBytes,
                CpuWeight = instance.CpuWeight,
                Labels = instance.Labels,
                MinAvailable = instance.MinAvailable,
            };
            var result = _scheduler.Schedule(state.Snapshot, request);
            var placement = result.Instances[0];
            if (placement.NodeName is { } target)
            {
                foreach (var v in result.Victims)
                {
                    state.Evict(v.NodeName, v.Instance);
                    victims.Add(v);
                }

                state.Bind(target, instance);
                moves.Add(new InstanceMove(instance, node.Name, target, batch, surge, null));
            }
            else
            {
                if (!lost)
                {
                    state.Bind(node.Name, instance);
                }

                moves.Add(new InstanceMove(instance, node.Name, null, batch, surge, placement.Pending));
            }
        }

        return new RescheduleResult(moves, victims, state.Snapshot);
    }

    private static bool HasNoExecute(SchedulerNode node)
    {
        foreach (var taint in node.Taints)
        {
            if (taint.Effect == TaintEffect.NoExecute)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Tolerated(SchedulerNode node, IReadOnlyList<Toleration> tolerations)
    {
        foreach (var taint in node.Taints)
        {
            if (taint.Effect == TaintEffect.NoExecute && !tolerations.Any(t => t.Tolerates(taint)))
            {
                return false;
            }
        }

        return true;
    }
}
