using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Clustering;

/// <summary>A deployment as the planner sees it.</summary>
/// <param name="Record">The stored record (its <see cref="DeploymentRecord.Revision"/> is the store revision).</param>
/// <param name="Manifest">The parsed manifest.</param>
public sealed record PlannerDeployment(DeploymentRecord Record, WarpManifest Manifest)
{
    /// <summary>Instances the cluster runs: <c>min_instances</c>, at least 1.</summary>
    public int Desired => Math.Max(1, Manifest.Runtime.MinInstances);

    /// <summary>The scheduler's request for this deployment: its resources, <c>[package] labels</c> and <c>[placement]</c> constraints.</summary>
    public PlacementRequest Request(int instances) => Manifest.Placement.ToRequest(
        Record.Name, Manifest.Package.Labels, Manifest.Runtime.Resources.MemoryLimitBytes, Manifest.Runtime.Resources.CpuWeight, instances);

    /// <summary>Whether instances of this deployment must leave <paramref name="node"/>: it has a <c>NoExecute</c> taint they do not tolerate.</summary>
    public bool EvictedFrom(NodeRecord node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.Taints.Count > 0 && !Manifest.Placement.ToleratesNoExecute(node.Taints.Select(t => t.ToTaint()));
    }
}

/// <summary>A node as the planner sees it.</summary>
/// <param name="Record">The stored node record.</param>
/// <param name="Status">The status decided by the <see cref="NodeHealthTracker"/>.</param>
/// <param name="Running">What its agent reported running.</param>
public sealed record PlannerNode(NodeRecord Record, NodeStatus Status, IReadOnlyList<RunningReport> Running)
{
    /// <summary>The node name.</summary>
    public string Name => Record.Name;
}

/// <summary>An existing allocation and the store revision it was written at.</summary>
/// <param name="Record">The allocation.</param>
/// <param name="ModRevision">Its store mod revision (what the agent reports running).</param>
public sealed record PlannerAllocation(AllocationRecord Record, long ModRevision);

/// <summary>Where a deployment runs, or why (part of) it is pending.</summary>
/// <param name="Deployment">The deployment.</param>
/// <param name="Revision">The deployment record's store revision.</param>
/// <param name="Desired">Instances wanted.</param>
/// <param name="Placed">Instances on nodes that keep them (not lost, not draining).</param>
/// <param name="Nodes">Instances per node (draining nodes included).</param>
/// <param name="Pending">Why the missing instances have no node, when some are missing.</param>
/// <param name="Draining">
/// Instances still on draining nodes (or on nodes with a <c>NoExecute</c> taint the deployment does not tolerate),
/// waiting for their replacements to run.
/// </param>
public sealed record DeploymentPlacement(string Deployment, long Revision, int Desired, int Placed, IReadOnlyDictionary<string, int> Nodes, PlacementExplanation? Pending, int Draining)
{
    /// <summary>The manifest's <c>[placement]</c> constraints in one line (<see cref="PlacementSection.Describe"/>), or null when it has none.</summary>
    public string? Constraints { get; init; }

    /// <summary>A one-line account for <c>warp status</c>, or null when everything is placed; a pending one names the constraints.</summary>
    public string? Message => Pending is null
        ? Draining > 0 ? $"{Draining} instance(s) on draining or NoExecute-tainted nodes wait for their replacements to start" : null
        : $"{Desired - Placed} of {Desired} instance(s) pending: {Pending}" + (Constraints is null ? string.Empty : $" (placement: {Constraints})");
}

/// <summary>The planner's decision.</summary>
/// <param name="Allocations">Instances per (node, deployment) to write; pairs absent here are deleted.</param>
/// <param name="Deployments">Per deployment, in name order.</param>
/// <param name="Moves">Moves off lost and draining nodes decided in this pass (from the <see cref="Rescheduler"/>).</param>
/// <param name="Victims">Instances preempted in this pass.</param>
public sealed record ClusterPlan(
    IReadOnlyDictionary<(string Node, string Deployment), int> Allocations,
    IReadOnlyList<DeploymentPlacement> Deployments,
    IReadOnlyList<InstanceMove> Moves,
    IReadOnlyList<PreemptionVictim> Victims);

/// <summary>
/// Decides the allocations of a cluster from its deployments, nodes and current allocations (pure, deterministic;
/// the scheduling controller runs it after every change). In order:
/// <list type="number">
/// <item>Allocations of deleted deployments or on unknown nodes are dropped.</item>
/// <item>Instances on lost nodes, and on draining nodes of deployments short of replacements, go through the
/// <see cref="Rescheduler"/> (every filter holds; drain batches honour each deployment's budget); only batch 0 is applied in a
/// pass, so later batches start after earlier replacements. Lost instances are gone whether or not a node takes them.</item>
/// <item>Deployments still short (new, scaled up, or not movable) are scheduled through <see cref="IScheduler"/>; what no
/// node takes is pending with the scheduler's explanation. Deployments with too many instances lose them from the nodes
/// that have most (ties: the last name).</item>
/// <item>Instances on a draining node are removed once the deployment's instances elsewhere all run (make before break).</item>
/// </list>
/// Cordoned and not-ready nodes keep their instances and receive none.
/// </summary>
public sealed class ClusterPlanner
{
    private readonly IScheduler _scheduler;
    private readonly Rescheduler _rescheduler;

    /// <summary>Creates a planner that places through <paramref name="scheduler"/>.</summary>
    public ClusterPlanner(IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        _scheduler = scheduler;
        _rescheduler = new Rescheduler(scheduler);
    }

    /// <summary>The scheduler nodes for the current state (used by <c>--explain</c>).</summary>
    public static IReadOnlyList<SchedulerNode> ToSchedulerNodes(
        IReadOnlyList<PlannerNode> nodes,
        IReadOnlyDictionary<string, PlannerDeployment> deployments,
        IReadOnlyDictionary<string, Dictionary<string, int>> counts)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(deployments);
        ArgumentNullException.ThrowIfNull(counts);
        var result = new List<SchedulerNode>(nodes.Count);
        foreach (var node in nodes)
        {
            var allocated = new List<PlacedInstance>();
            foreach (var (dep, perNode) in counts.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (perNode.TryGetValue(node.Name, out int n) && deployments.TryGetValue(dep, out var d))
                {
                    for (int i = 0; i < n; i++)
                    {
                        allocated.Add(Instance(d, node.Name, i));
                    }
                }
            }

            result.Add(new SchedulerNode
            {
                Name = node.Name,
                Labels = node.Record.Labels,
                Taints = [.. node.Record.Taints.Select(t => t.ToTaint())],
                Capacity = new NodeCapacity(node.Record.MemoryBytes, node.Record.CpuWeight, node.Record.InstanceSlots),
                Status = node.Status,
                Cordoned = node.Record.Cordoned,
                Draining = node.Record.Draining,
                Allocated = allocated,
            });
        }

        return result;
    }

    private static PlacedInstance Instance(PlannerDeployment d, string node, int i) => new()
    {
        InstanceId = $"{d.Record.Name}@{node}#{i}",
        Deployment = d.Record.Name,
        MemoryBytes = d.Manifest.Runtime.Resources.MemoryLimitBytes,
        CpuWeight = d.Manifest.Runtime.Resources.CpuWeight,
        Labels = d.Manifest.Package.Labels,
        Priority = d.Manifest.Placement.Priority,
        MinAvailable = d.Manifest.Placement.MinAvailable,
    };

    /// <summary>Computes the plan.</summary>
    public ClusterPlan Plan(IReadOnlyList<PlannerDeployment> deployments, IReadOnlyList<PlannerNode> nodes, IReadOnlyList<PlannerAllocation> allocations)
    {
        ArgumentNullException.ThrowIfNull(deployments);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(allocations);
        var deps = deployments.ToDictionary(d => d.Record.Name, StringComparer.Ordinal);
        var byName = nodes.ToDictionary(n => n.Name, StringComparer.Ordinal);
        var sortedNodes = nodes.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        var written = new Dictionary<(string Node, string Deployment), PlannerAllocation>();
        var counts = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var a in allocations)
        {
            var r = a.Record;
            if (!deps.ContainsKey(r.Deployment) || !byName.ContainsKey(r.Node) || r.Instances <= 0)
            {
                continue;
            }

            written[(r.Node, r.Deployment)] = a;
            Counts(counts, r.Deployment)[r.Node] = r.Instances;
        }

        bool Lost(string node) => byName[node].Status == NodeStatus.Lost;

        // Instances leave a node that drains, or that has a NoExecute taint their deployment does not tolerate (make before break).
        bool Leaving(string node, string dep) => byName[node].Record.Draining || deps[dep].EvictedFrom(byName[node].Record);
        int Good(string dep) => counts.TryGetValue(dep, out var m) ? m.Where(p => !Lost(p.Key) && !Leaving(p.Key, dep)).Sum(p => p.Value) : 0;

        // 2. Moves off lost and draining nodes, limited to what each deployment is short of.
        var toMove = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var dep in deps.Values.OrderBy(d => d.Record.Name, StringComparer.Ordinal))
        {
            int need = dep.Desired - Good(dep.Record.Name);
            if (need <= 0 || !counts.TryGetValue(dep.Record.Name, out var perNode))
            {
                continue;
            }

            foreach (var (node, n) in perNode.Where(p => Lost(p.Key) || Leaving(p.Key, dep.Record.Name)).OrderBy(p => p.Key, StringComparer.Ordinal).ToList())
            {
                int take = Math.Min(n, need);
                if (take <= 0)
                {
                    break;
                }

                Counts(toMove, dep.Record.Name)[node] = take;
                need -= take;
            }
        }

        var moves = new List<InstanceMove>();
        var victims = new List<PreemptionVictim>();
        if (toMove.Count > 0)
        {
            var snapshot = new ClusterSnapshot(ToSchedulerNodes(sortedNodes, deps, Merge(counts, toMove, (node, dep) => Lost(node) || Leaving(node, dep))));
            var requests = deps.Values.ToDictionary(d => d.Record.Name, d => d.Request(1), StringComparer.Ordinal);
            var result = _rescheduler.Reschedule(snapshot, requests);
            foreach (var v in result.Victims)
            {
                Decrement(counts, v.Instance.Deployment, v.NodeName);
                victims.Add(v);
            }

            foreach (var move in result.Moves.Where(m => m.Batch == 0))
            {
                moves.Add(move);
                if (move.ToNode is { } to)
                {
                    var perNode = Counts(counts, move.Instance.Deployment);
                    perNode[to] = perNode.GetValueOrDefault(to) + 1;
                }
            }
        }

        // Lost nodes keep nothing.
        foreach (var perNode in counts.Values)
        {
            foreach (var node in perNode.Keys.Where(Lost).ToList())
            {
                perNode.Remove(node);
            }
        }

        // 3. Fill what is missing, trim what is too much.
        var state = new ClusterState(ToSchedulerNodes(sortedNodes, deps, counts));
        var pending = new Dictionary<string, PlacementExplanation>(StringComparer.Ordinal);
        foreach (var dep in deps.Values.OrderBy(d => d.Record.Name, StringComparer.Ordinal))
        {
            var name = dep.Record.Name;
            int good = Good(name);
            if (good < dep.Desired)
            {
                var result = _scheduler.Schedule(state.Snapshot, dep.Request(dep.Desired - good));
                state.Bind(result);
                foreach (var v in result.Victims)
                {
                    Decrement(counts, v.Instance.Deployment, v.NodeName);
                    victims.Add(v);
                }

                foreach (var p in result.Instances)
                {
                    if (p.NodeName is { } node)
                    {
                        var perNode = Counts(counts, name);
                        perNode[node] = perNode.GetValueOrDefault(node) + 1;
                    }
                }

                if (result.Pending is { } why)
                {
                    pending[name] = why;
                }
            }
            else if (good > dep.Desired && counts.TryGetValue(name, out var perNode))
            {
                int excess = good - dep.Desired;
                while (excess-- > 0)
                {
                    var node = perNode.Where(p => !Leaving(p.Key, name) && p.Value > 0)
                        .OrderByDescending(p => p.Value).ThenByDescending(p => p.Key, StringComparer.Ordinal).First().Key;
                    Decrement(counts, name, node);
                }
            }
        }

        // 4. Drained instances go once their replacements run.
        foreach (var dep in deps.Values)
        {
            var name = dep.Record.Name;
            if (!counts.TryGetValue(name, out var perNode) || Good(name) < dep.Desired)
            {
                continue;
            }

            bool replacementsRun = perNode.Where(p => !Leaving(p.Key, name) && p.Value > 0).All(p =>
                written.TryGetValue((p.Key, name), out var a) && a.Record.Instances == p.Value && a.Record.DeploymentRevision == dep.Record.Revision
                && byName[p.Key].Running.Any(r => r.Deployment == name && r.Running && r.AllocationRevision >= a.ModRevision));
            if (replacementsRun)
            {
                foreach (var node in perNode.Keys.Where(n => Leaving(n, name)).ToList())
                {
                    perNode.Remove(node);
                }
            }
        }

        var plan = new Dictionary<(string Node, string Deployment), int>();
        var placements = new List<DeploymentPlacement>();
        foreach (var dep in deps.Values.OrderBy(d => d.Record.Name, StringComparer.Ordinal))
        {
            var name = dep.Record.Name;
            var perNode = counts.TryGetValue(name, out var m) ? m.Where(p => p.Value > 0).ToDictionary(StringComparer.Ordinal) : new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (node, n) in perNode)
            {
                plan[(node, name)] = n;
            }

            int good = perNode.Where(p => !Leaving(p.Key, name)).Sum(p => p.Value);
            int draining = perNode.Where(p => Leaving(p.Key, name)).Sum(p => p.Value);
            placements.Add(new DeploymentPlacement(name, dep.Record.Revision, dep.Desired, good, perNode, good < dep.Desired ? pending.GetValueOrDefault(name) ?? MovePending(moves, name) : null, draining)
            {
                Constraints = dep.Manifest.Placement.Describe(),
            });
        }

        return new ClusterPlan(plan, placements, moves, victims);
    }

    private static PlacementExplanation? MovePending(List<InstanceMove> moves, string deployment) =>
        moves.FirstOrDefault(m => m.Instance.Deployment == deployment && m.Pending is not null)?.Pending;

    private static Dictionary<string, Dictionary<string, int>> Merge(
        Dictionary<string, Dictionary<string, int>> counts,
        Dictionary<string, Dictionary<string, int>> toMove,
        Func<string, string, bool> moving)
    {
        // On lost and draining nodes (and NoExecute ones, for the deployments they evict) only the instances to move are
        // modelled; elsewhere everything.
        var merged = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var (dep, perNode) in counts)
        {
            var target = Counts(merged, dep);
            foreach (var (node, n) in perNode)
            {
                int value = moving(node, dep) ? (toMove.TryGetValue(dep, out var mv) ? mv.GetValueOrDefault(node) : 0) : n;
                if (value > 0)
                {
                    target[node] = value;
                }
            }
        }

        return merged;
    }

    private static Dictionary<string, int> Counts(Dictionary<string, Dictionary<string, int>> counts, string deployment)
    {
        if (!counts.TryGetValue(deployment, out var perNode))
        {
            perNode = new Dictionary<string, int>(StringComparer.Ordinal);
            counts[deployment] = perNode;
        }

        return perNode;
    }

    private static void Decrement(Dictionary<string, Dictionary<string, int>> counts, string deployment, string node)
    {
        if (counts.TryGetValue(deployment, out var perNode) && perNode.TryGetValue(node, out int n))
        {
            if (n <= 1)
            {
                perNode.Remove(node);
            }
            else
            {
                perNode[node] = n - 1;
            }
        }
    }
}
