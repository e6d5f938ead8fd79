using CsCheck;
using WarpGrid.Core.Scheduling;
using static WarpGrid.Core.Tests.Scheduling.SchedulingTestData;

namespace WarpGrid.Core.Tests.Scheduling;

public sealed class ReschedulerTests
{
    private static readonly string[] Apps = ["a", "b", "c"];
    private static readonly Taint Gpu = new("gpu", "true", TaintEffect.NoSchedule);
    private static readonly Taint Maint = new("maint", "now", TaintEffect.NoExecute);

    private static Rescheduler Rescheduler() => new(Scheduler());

    [Fact]
    public void LostNode_InstancesMoveElsewhere_InBatchZero()
    {
        var snapshot = Cluster(
            Node("a", allocated: [Inst("web", 0), Inst("web", 1, minAvailable: 2)]) with { Status = NodeStatus.Lost },
            Node("b"),
            Node("c"));
        var result = Rescheduler().Reschedule(snapshot);
        Assert.Equal(2, result.Moves.Count);
        Assert.All(result.Moves, m =>
        {
            Assert.Equal("a", m.FromNode);
            Assert.Contains(m.ToNode, new[] { "b", "c" });
            Assert.Equal(0, m.Batch);
            Assert.Null(m.Pending);
        });
        Assert.Empty(result.After.Nodes[result.After.IndexOf("a")].Allocated);
    }

    [Fact]
    public void CordonedAndNotReadyNodes_KeepTheirInstances_AndTakeNoNewOnes()
    {
        var snapshot = Cluster(
            Node("a", allocated: [Inst("web", 0)]) with { Cordoned = true },
            Node("b", allocated: [Inst("web", 1)]) with { Status = NodeStatus.NotReady },
            Node("c", allocated: [Inst("api", 0)]) with { Draining = true },
            Node("d", memGi: 1));
        var result = Rescheduler().Reschedule(snapshot);
        var move = Assert.Single(result.Moves);
        Assert.Equal("api-0", move.Instance.InstanceId);
        Assert.Equal("d", move.ToNode);
        Assert.Single(result.After.Nodes[result.After.IndexOf("a")].Allocated);
        Assert.Single(result.After.Nodes[result.After.IndexOf("b")].Allocated);
    }

    [Fact]
    public void NoExecuteTaint_MovesOnlyUntoleratingInstances_InBudgetBatches()
    {
        var noExecute = new Taint("maintenance", "now", TaintEffect.NoExecute);
        var snapshot = Cluster(
            Node("a", taints: [noExecute], allocated: [Inst("web", 0, minAvailable: 1), Inst("web", 1, minAvailable: 1), Inst("ops", 0)]),
            Node("b"),
            Node("c"));
        var tolerating = new Dictionary<string, PlacementRequest>
        {
            ["ops"] = new() { Deployment = "ops", Tolerations = [new Toleration("maintenance", Effect: TaintEffect.NoExecute, Operator: TolerationOperator.Exists)] },
        };

        var result = Rescheduler().Reschedule(snapshot, tolerating);

        // web does not tolerate it: both instances move, one at a time (2 running, min_available 1); ops stays.
        Assert.Equal(["web-0", "web-1"], result.Moves.Select(m => m.Instance.InstanceId));
        Assert.All(result.Moves, m => Assert.Contains(m.ToNode, new[] { "b", "c" }));
        Assert.Equal([0, 1], result.Moves.Select(m => m.Batch));
        Assert.Equal(["ops-0"], result.After.Nodes[result.After.IndexOf("a")].Allocated.Select(i => i.InstanceId));

        // A PreferNoSchedule or NoSchedule taint evicts nothing that runs.
        var soft = Cluster(Node("a", taints: [Gpu, new Taint("x", "y", TaintEffect.PreferNoSchedule)], allocated: [Inst("web", 0)]), Node("b"));
        Assert.Empty(Rescheduler().Reschedule(soft).Moves);
    }

    [Fact]
    public void Drain_WithoutRoom_LeavesPendingWithExplanation_AndTheInstanceInPlace()
    {
        var snapshot = Cluster(
            Node("a", allocated: [Inst("web", 0, memGi: 4)]) with { Draining = true },
            Node("b", memGi: 2),
            Node("c", taints: [Gpu]),
            Node("d", memGi: 2));
        var result = Rescheduler().Reschedule(snapshot);
        var move = Assert.Single(result.Moves);
        Assert.Null(move.ToNode);
        Assert.Equal("2 nodes: insufficient memory; 1 node: node draining; 1 node: taint gpu=true not tolerated", move.Pending!.ToString());
        Assert.Single(result.After.Nodes[result.After.IndexOf("a")].Allocated);
    }

    [Fact]
    public void Drain_HonoursMinAvailable_InBatches()
    {
        // 5 web instances, min-available 3: 2 disruptions allowed, so the 4 on the drained node go in batches of 2.
        var web = Enumerable.Range(0, 5).Select(i => Inst("web", i, minAvailable: 3)).ToArray();
        var snapshot = Cluster(Node("a", allocated: web[..4]) with { Draining = true }, Node("b", allocated: [web[4]]), Node("c"));
        var result = Rescheduler().Reschedule(snapshot);
        Assert.Equal(4, result.Moves.Count);
        Assert.Equal([0, 0, 1, 1], result.Moves.Select(m => m.Batch));
        Assert.All(result.Moves, m => Assert.False(m.StartBeforeStop));
        Assert.Empty(result.After.Nodes[result.After.IndexOf("a")].Allocated);

        // At its budget (2 running, min-available 2): one at a time, replacement first.
        var tight = Cluster(Node("a", allocated: [Inst("db", 0, minAvailable: 2), Inst("db", 1, minAvailable: 2)]) with { Draining = true }, Node("b"));
        var tightResult = Rescheduler().Reschedule(tight);
        Assert.Equal([0, 1], tightResult.Moves.Select(m => m.Batch));
        Assert.All(tightResult.Moves, m => Assert.True(m.StartBeforeStop));
    }

    [Fact]
    public void Drain_KeepsDeploymentConstraints()
    {
        var snapshot = Cluster(
            Node("a", labels: L("zone=z1"), taints: [Gpu], allocated: [Inst("ml", 0)]) with { Draining = true },
            Node("b", labels: L("zone=z2")),
            Node("c", labels: L("zone=z1"), taints: [Gpu]),
            Node("d", labels: L("zone=z2"), taints: [Gpu]));
        var spec = Req("ml") with { NodeSelector = L("zone=z1"), Tolerations = [new Toleration("gpu", "true")] };
        var result = Rescheduler().Reschedule(snapshot, new Dictionary<string, PlacementRequest> { ["ml"] = spec });
        Assert.Equal("c", Assert.Single(result.Moves).ToNode);
    }

    private static readonly Gen<SchedulerNode> GenNode =
        Gen.Select(Gen.Int[1, 8], Gen.Int[1, 6], Gen.Int[0, 3], Gen.Int[0, 9], Gen.Int[0, 2], Gen.Int[0, 1])
            .SelectMany((mem, slots, taint, status, app, zone) =>
                Gen.Select(Gen.Int[0, 2], Gen.Int[0, 2], Gen.Int[0, 2]).Array[0, 4].Select(specs => Node(
                    "n",
                    memGi: mem,
                    cpu: 1000,
                    slots: slots,
                    labels: L($"zone=z{zone}"),
                    taints: taint == 0 ? [Gpu] : taint == 1 ? [Maint] : [],
                    allocated: specs.Select((s, i) => Inst(Apps[s.Item1], (app * 100) + i, memGi: s.Item2, cpu: 100, minAvailable: s.Item3)).ToArray()) with
                {
                    Status = status == 0 ? NodeStatus.Lost : NodeStatus.Ready,
                    Draining = status is 1 or 2,
                    Cordoned = status == 3,
                }));

    private static readonly Gen<ClusterSnapshot> GenCluster =
        GenNode.Array[1, 10].Select(nodes => new ClusterSnapshot(nodes.Select((n, i) => n with
        {
            Name = "node" + i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture),
            Allocated = n.Allocated.Select(x => x with { InstanceId = x.InstanceId + "@" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) }).ToArray(),
        })));

    private static readonly Dictionary<string, PlacementRequest> Specs = Apps.ToDictionary(
        a => a,
        a => Req(a) with
        {
            Tolerations = a == "a" ? [new Toleration("gpu", "true")] : a == "c" ? [new Toleration("maint", Operator: TolerationOperator.Exists)] : [],
            AntiAffinity = a == "b" ? [new AffinityTerm { MatchLabels = L("app=b"), TopologyKey = TopologyKeys.Node, Required = true }] : [],
        });

    private static bool Evicted(SchedulerNode node, PlacedInstance instance) =>
        node.Taints.Any(t => t.Effect == TaintEffect.NoExecute && !Specs[instance.Deployment].Tolerations.Any(tol => tol.Tolerates(t)));

    [Fact]
    public void AfterRescheduling_NothingStaysOnLostOrDrainedNodesUnlessPending_AndInvariantsHold()
    {
        var rescheduler = Rescheduler();
        GenCluster.Sample(snapshot =>
        {
            var result = rescheduler.Reschedule(snapshot, Specs);
            var pending = result.Moves.Where(m => m.ToNode is null).Select(m => m.Instance).ToHashSet();
            var evacuate = snapshot.Nodes.Where(n => n.Status == NodeStatus.Lost || n.Draining).SelectMany(n => n.Allocated)
                .Concat(snapshot.Nodes.Where(n => n.Status != NodeStatus.Lost && !n.Draining).SelectMany(n => n.Allocated.Where(i => Evicted(n, i))))
                .ToList();
            Assert.Equal(evacuate.Count, result.Moves.Count);
            foreach (var node in result.After.Nodes)
            {
                if (node.Status == NodeStatus.Lost)
                {
                    Assert.Empty(node.Allocated);
                }
                else if (node.Draining)
                {
                    Assert.All(node.Allocated, i => Assert.Contains(i, pending));
                }
                else
                {
                    // A NoExecute taint leaves only tolerating instances, and those no node could take.
                    Assert.All(node.Allocated.Where(i => Evicted(node, i)), i => Assert.Contains(i, pending));
                }

                var original = snapshot.Nodes[snapshot.IndexOf(node.Name)];
                var added = node.Allocated.Except(original.Allocated).ToList();
                if (added.Count == 0)
                {
                    continue;
                }

                Assert.False(node.Draining || node.Cordoned || node.Status != NodeStatus.Ready, "no new instances on unavailable nodes");
                Assert.True(node.Allocated.Sum(i => i.MemoryBytes) <= node.Capacity.MemoryBytes, "memory over-committed");
                Assert.True(node.Allocated.Sum(i => (long)i.CpuWeight) <= node.Capacity.CpuWeight, "cpu over-committed");
                Assert.True(node.Allocated.Count <= node.Capacity.InstanceSlots, "slots over-committed");
                foreach (var instance in added)
                {
                    var spec = Specs[instance.Deployment];
                    Assert.All(node.Taints, t => Assert.Contains(spec.Tolerations, tol => tol.Tolerates(t)));
                    foreach (var term in spec.AntiAffinity.Where(t => t.Required))
                    {
                        Assert.Equal(1, node.Allocated.Count(i => term.Matches(i.Labels)));
                    }
                }
            }

            // Batches: within a batch, a deployment never loses more than its allowed disruptions.
            foreach (var group in result.Moves.Where(m => !m.StartBeforeStop && snapshot.Nodes[snapshot.IndexOf(m.FromNode)].Status == NodeStatus.Ready).GroupBy(m => (m.Instance.Deployment, m.Batch)))
            {
                int ready = snapshot.Nodes.Where(n => n.Status == NodeStatus.Ready).Sum(n => n.Allocated.Count(i => i.Deployment == group.Key.Deployment));
                int budget = snapshot.Nodes.SelectMany(n => n.Allocated).Where(i => i.Deployment == group.Key.Deployment).Max(i => i.MinAvailable);
                Assert.True(ready - group.Count() >= budget, "min-available honoured within a batch");
            }
        }, iter: 1000);
    }
}
