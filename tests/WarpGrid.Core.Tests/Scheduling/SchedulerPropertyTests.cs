using CsCheck;
using WarpGrid.Core.Scheduling;
using static WarpGrid.Core.Tests.Scheduling.SchedulingTestData;

namespace WarpGrid.Core.Tests.Scheduling;

public sealed class SchedulerPropertyTests
{
    private static readonly string[] Apps = ["a", "b", "c"];
    private static readonly string[] Zones = ["z1", "z2"];

    private static readonly Gen<PlacedInstance> GenInstance =
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[0, 5], Gen.Int[0, 1], Gen.Int[0, 100000])
            .Select((app, mem, cpu, prio, min, id) => Inst(Apps[app], id, memGi: mem, cpu: cpu * 100, priority: prio, minAvailable: min));

    private static readonly Gen<SchedulerNode> GenNode =
        Gen.Select(Gen.Int[1, 8], Gen.Int[1, 6], Gen.Int[1, 6], Gen.Int[0, 1], Gen.Int[0, 3], GenInstance.Array[0, 4], Gen.Int[0, 9])
            .Select((mem, cpu, slots, zone, taint, allocated, status) => Node(
                "n",
                memGi: mem,
                cpu: cpu * 100,
                slots: slots,
                labels: L($"zone={Zones[zone]}"),
                taints: taint switch
                {
                    0 => [new Taint("gpu", "true", TaintEffect.NoSchedule)],
                    1 => [new Taint("spot", "", TaintEffect.PreferNoSchedule)],
                    2 => [new Taint("drain", "", TaintEffect.NoExecute)],
                    _ => [],
                },
                allocated: allocated) with
            { Status = status == 0 ? NodeStatus.NotReady : NodeStatus.Ready });

    private static readonly Gen<ClusterSnapshot> GenCluster =
        GenNode.Array[0, 12].Select(nodes => new ClusterSnapshot(nodes.Select((n, i) => n with { Name = "node" + i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture) })));

    private static readonly Gen<PlacementRequest> GenRequest =
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[1, 6], Gen.Int[0, 6], Gen.Int[0, 4], Gen.Bool)
            .Select((app, mem, cpu, count, prio, terms, binpack) => Req("new-" + Apps[app], memGi: mem, cpu: cpu * 100, instances: count, priority: prio) with
            {
                Labels = L($"app={Apps[app]}"),
                Strategy = binpack ? ScoringStrategy.BinPack : ScoringStrategy.Spread,
                Tolerations = (terms & 1) == 1 ? [new Toleration("gpu", "true")] : [],
                AntiAffinity = (terms & 2) == 2 ? [new AffinityTerm { MatchLabels = L($"app={Apps[app]}"), TopologyKey = TopologyKeys.Node, Required = true }] : [],
                Affinity = terms == 1 ? [new AffinityTerm { MatchLabels = L($"app={Apps[(app + 1) % 3]}"), TopologyKey = TopologyKeys.Zone, Required = true }] : [],
            });

    private static readonly Gen<(ClusterSnapshot Snapshot, PlacementRequest Request)> GenCase = Gen.Select(GenCluster, GenRequest);

    [Fact]
    public void Placements_NeverOvercommit_NorViolateTaintsOrRequiredTerms_AndPreemptOnlyLowerPriority()
    {
        var scheduler = PipelineScheduler.CreateDefault();
        GenCase.Sample(c =>
        {
            var (snapshot, request) = c;
            var result = scheduler.Schedule(snapshot, request);
            Assert.Equal(request.Instances, result.Instances.Count);

            // Rebuild the final state: snapshot − victims + placements.
            var byName = snapshot.Nodes.ToDictionary(n => n.Name, n => n.Allocated.ToList());
            foreach (var v in result.Victims)
            {
                Assert.True(v.Instance.Priority < request.Priority, "victims are strictly lower priority");
                Assert.True(byName[v.NodeName].Remove(v.Instance), "victim exists on its node");
            }

            foreach (var p in result.Instances.Where(p => p.NodeName is not null))
            {
                var node = snapshot.Nodes.Single(n => n.Name == p.NodeName);
                Assert.Equal(NodeStatus.Ready, node.Status);
                Assert.All(node.Taints.Where(t => t.Effect != TaintEffect.PreferNoSchedule), t => Assert.Contains(request.Tolerations, tol => tol.Tolerates(t)));
                byName[p.NodeName!].Add(Inst(request.Deployment, 1_000_000 + p.Index, memGi: request.MemoryBytes / Gi, cpu: request.CpuWeight, priority: request.Priority, labels: (Dictionary<string, string>)request.Labels));
            }

            var touched = result.Instances.Select(p => p.NodeName).Concat(result.Victims.Select(v => v.NodeName)).Where(n => n is not null).ToHashSet();
            foreach (var node in snapshot.Nodes.Where(n => touched.Contains(n.Name)))
            {
                var list = byName[node.Name];
                Assert.True(list.Sum(i => i.MemoryBytes) <= node.Capacity.MemoryBytes, "memory over-committed");
                Assert.True(list.Sum(i => (long)i.CpuWeight) <= node.Capacity.CpuWeight, "cpu over-committed");
                Assert.True(list.Count <= node.Capacity.InstanceSlots, "slots over-committed");
            }

            foreach (var p in result.Instances.Where(p => p.NodeName is not null))
            {
                var node = snapshot.Nodes.Single(n => n.Name == p.NodeName);
                foreach (var term in request.AntiAffinity.Where(t => t.Required))
                {
                    // Exactly one matching instance (this one) may be on the node.
                    Assert.Equal(1, byName[node.Name].Count(i => term.Matches(i.Labels)));
                }

                foreach (var term in request.Affinity.Where(t => t.Required))
                {
                    string zone = node.Labels["zone"];
                    bool near = snapshot.Nodes.Where(n => n.Labels["zone"] == zone).Any(n => byName[n.Name].Any(i => term.Matches(i.Labels) && i.Deployment != request.Deployment));
                    Assert.True(near, "required affinity satisfied");
                }
            }

            // Budgets: victims never take a deployment below its min-available on ready nodes.
            foreach (var group in result.Victims.GroupBy(v => v.Instance.Deployment))
            {
                int ready = snapshot.Nodes.Where(n => n.Status == NodeStatus.Ready).Sum(n => n.Allocated.Count(i => i.Deployment == group.Key));
                Assert.True(ready - group.Count() >= snapshot.Nodes.SelectMany(n => n.Allocated).Where(i => i.Deployment == group.Key).Max(i => i.MinAvailable), "min-available honoured");
            }
        }, iter: 2000);
    }

    [Fact]
    public void Preemption_OnlyWhenNothingFitsWithoutIt()
    {
        var scheduler = PipelineScheduler.CreateDefault();
        var noPreemption = PipelineScheduler.CreateDefault(new SchedulerOptions { EnablePreemption = false });
        GenCase.Sample(c =>
        {
            var single = c.Request with { Instances = 1 };
            var result = scheduler.Schedule(c.Snapshot, single);
            var without = noPreemption.Schedule(c.Snapshot, single);
            if (without.IsFullyPlaced)
            {
                Assert.Empty(result.Victims);
                Assert.Equal(without.Instances[0].NodeName, result.Instances[0].NodeName);
            }
            else if (result.Victims.Count > 0)
            {
                Assert.True(result.Instances[0].Preempted);
            }
        }, iter: 2000);
    }

    [Fact]
    public void SameInputs_GiveTheSamePlacement()
    {
        GenCase.Sample(c =>
        {
            var first = PipelineScheduler.CreateDefault().Schedule(c.Snapshot, c.Request);
            var shuffled = new ClusterSnapshot(c.Snapshot.Nodes.Reverse());
            var second = PipelineScheduler.CreateDefault().Schedule(shuffled, c.Request);
            Assert.Equal(first.Instances.Select(i => i.NodeName), second.Instances.Select(i => i.NodeName));
            Assert.Equal(first.Victims.Select(v => v.Instance.InstanceId), second.Victims.Select(v => v.Instance.InstanceId));
            Assert.Equal(first.Pending?.ToString(), second.Pending?.ToString());
        }, iter: 500);
    }

    [Fact]
    public void BindingIntoClusterState_SchedulesLikeAFreshSnapshotOfTheSameNodes()
    {
        var scheduler = PipelineScheduler.CreateDefault();
        Gen.Select(GenCluster, GenRequest, GenRequest, GenRequest).Sample(c =>
        {
            var (snapshot, r1, r2, r3) = c;

            // A ClusterState remembers a deployment's budget after its instances are evicted; a fresh snapshot cannot.
            var state = new ClusterState(snapshot.Nodes.Select(n => n with { Allocated = n.Allocated.Select(i => i with { MinAvailable = 0 }).ToArray() }));
            foreach (var request in new[] { r1, r2 })
            {
                state.Bind(scheduler.Schedule(state.Snapshot, request));
            }

            var fresh = new ClusterSnapshot(state.Snapshot.Nodes.Select(n => n with { Allocated = n.Allocated.ToArray() }));
            var incremental = scheduler.Schedule(state.Snapshot, r3);
            var rebuilt = scheduler.Schedule(fresh, r3);
            Assert.Equal(rebuilt.Instances.Select(i => (i.NodeName, i.Score)), incremental.Instances.Select(i => (i.NodeName, i.Score)));
            Assert.Equal(rebuilt.Victims.Select(v => v.Instance.InstanceId), incremental.Victims.Select(v => v.Instance.InstanceId));
            Assert.Equal(rebuilt.Pending?.ToString(), incremental.Pending?.ToString());
        }, iter: 1000);
    }

    [Fact]
    public void ScheduledScore_EqualsTheExplainedTotal_ForTheFirstInstance()
    {
        // The hot path inlines the built-in plugins; Explain runs every plugin on every node. They must agree.
        var scheduler = PipelineScheduler.CreateDefault(new SchedulerOptions { ScoreWeights = { ["ResourceAllocation"] = 3, ["TaintToleration"] = 2 } });
        GenCase.Sample(c =>
        {
            var explained = scheduler.Explain(c.Snapshot, c.Request with { Instances = 1 });
            var first = explained.Result.Instances[0];
            if (first.NodeName is null || first.Preempted)
            {
                Assert.DoesNotContain(explained.Nodes, n => n.Feasible);
                return;
            }

            long best = explained.Nodes.Where(n => n.Feasible).Max(n => n.TotalScore!.Value);
            Assert.Equal(best, first.Score);
            Assert.Equal(explained.Nodes.First(n => n.TotalScore == best).NodeName, first.NodeName);
        }, iter: 2000);
    }
}
