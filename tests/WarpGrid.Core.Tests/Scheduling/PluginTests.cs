using WarpGrid.Core.Scheduling;
using static WarpGrid.Core.Tests.Scheduling.SchedulingTestData;

namespace WarpGrid.Core.Tests.Scheduling;

public sealed class PluginTests
{
    [Fact]
    public void ResourceFit_RejectsMemoryCpuAndSlots_AsPreemptible()
    {
        var snapshot = Cluster(
            Node("mem", memGi: 2, allocated: [Inst("x", 0, memGi: 2)]),
            Node("cpu", cpu: 100, allocated: [Inst("x", 1, memGi: 0, cpu: 100)]),
            Node("slots", slots: 1, allocated: [Inst("x", 2, memGi: 0, cpu: 0)]),
            Node("ok"));
        var explanation = Scheduler().Explain(snapshot, Req("web"));
        string? Reason(string node) => explanation.Nodes.Single(n => n.NodeName == node).Filters.Single(f => f.Plugin == ResourceFitFilter.PluginName).Reason;
        Assert.Equal("insufficient memory", Reason("mem"));
        Assert.Equal("insufficient cpu", Reason("cpu"));
        Assert.Equal("no free instance slot", Reason("slots"));
        Assert.Null(Reason("ok"));
        Assert.Equal("ok", explanation.Result.Instances[0].NodeName);
    }

    [Fact]
    public void NodeReady_RejectsNotReadyLostAndCordoned()
    {
        var snapshot = Cluster(
            Node("a") with { Status = NodeStatus.NotReady },
            Node("b") with { Status = NodeStatus.Lost },
            Node("c") with { Cordoned = true });
        var result = Scheduler().Schedule(snapshot, Req("web"));
        Assert.False(result.IsFullyPlaced);
        Assert.Equal("1 node: node cordoned; 1 node: node lost; 1 node: node not ready", result.Pending!.ToString());
    }

    [Fact]
    public void NodeSelector_RequiresEveryLabel()
    {
        var snapshot = Cluster(Node("a", labels: L("zone=eu")), Node("b", labels: L("zone=eu", "disk=ssd")), Node("c"));
        var request = Req("web") with { NodeSelector = L("zone=eu", "disk=ssd") };
        var result = Scheduler().Schedule(snapshot, request);
        Assert.Equal("b", result.Instances[0].NodeName);
        var pending = Scheduler().Schedule(Cluster(Node("a", labels: L("zone=eu")), Node("c")), request).Pending!;
        Assert.Equal("2 nodes: node selector disk=ssd not matched", pending.ToString());
    }

    [Fact]
    public void Taints_NoScheduleAndNoExecuteFilter_PreferNoScheduleScores()
    {
        var gpu = new Taint("gpu", "true", TaintEffect.NoSchedule);
        var drain = new Taint("drain", "", TaintEffect.NoExecute);
        var soft = new Taint("spot", "yes", TaintEffect.PreferNoSchedule);
        var snapshot = Cluster(Node("a", taints: [gpu]), Node("b", taints: [drain]), Node("c", taints: [soft]));
        var result = Scheduler().Schedule(snapshot, Req("web"));
        Assert.Equal("c", result.Instances[0].NodeName);

        var both = Cluster(Node("a", taints: [gpu]), Node("c", taints: [soft]), Node("d"));
        Assert.Equal("d", Scheduler().Schedule(both, Req("web")).Instances[0].NodeName);

        var tolerating = Req("web") with { Tolerations = [new Toleration("gpu", "true", TaintEffect.NoSchedule)] };
        var onlyGpu = Cluster(Node("a", taints: [gpu]), Node("b", taints: [drain]));
        Assert.Equal("a", Scheduler().Schedule(onlyGpu, tolerating).Instances[0].NodeName);

        var pending = Scheduler().Schedule(onlyGpu, Req("web")).Pending!;
        Assert.Equal("1 node: taint drain not tolerated; 1 node: taint gpu=true not tolerated", pending.ToString());
    }

    [Theory]
    [InlineData("gpu", "true", null, TolerationOperator.Equal, true)]
    [InlineData("gpu", "false", null, TolerationOperator.Equal, false)]
    [InlineData("gpu", "", null, TolerationOperator.Exists, true)]
    [InlineData("", "", null, TolerationOperator.Exists, true)]
    [InlineData("", "", null, TolerationOperator.Equal, false)]
    [InlineData("gpu", "true", TaintEffect.NoExecute, TolerationOperator.Equal, false)]
    [InlineData("gpu", "true", TaintEffect.NoSchedule, TolerationOperator.Equal, true)]
    public void Toleration_Matching(string key, string value, TaintEffect? effect, TolerationOperator op, bool expected)
        => Assert.Equal(expected, new Toleration(key, value, effect, op).Tolerates(new Taint("gpu", "true", TaintEffect.NoSchedule)));

    [Fact]
    public void RequiredAntiAffinity_OnePerNode_LeavesTheRestPendingWithReason()
    {
        var snapshot = Cluster(Node("a"), Node("b"), Node("c"));
        var request = Req("web", instances: 4) with
        {
            AntiAffinity = [new AffinityTerm { MatchLabels = L("app=web"), TopologyKey = TopologyKeys.Node, Required = true }],
        };
        var result = Scheduler().Schedule(snapshot, request);
        Assert.Equal(["a", "b", "c"], result.Instances.Take(3).Select(i => i.NodeName!).Order(StringComparer.Ordinal));
        Assert.Null(result.Instances[3].NodeName);
        Assert.Equal("3 nodes: required anti-affinity app=web per node violated", result.Instances[3].Pending!.ToString());
    }

    [Fact]
    public void RequiredAffinity_ByZone_FollowsTheTargetAndFirstSelfMatchGoesAnywhere()
    {
        var db = Inst("db", 0, labels: L("app=db"));
        var snapshot = Cluster(
            Node("a", labels: L("zone=z1")),
            Node("b", labels: L("zone=z2"), allocated: [db]),
            Node("c", labels: L("zone=z2")),
            Node("d"));
        var request = Req("web", instances: 3) with
        {
            Affinity = [new AffinityTerm { MatchLabels = L("app=db"), TopologyKey = TopologyKeys.Zone, Required = true }],
        };
        var result = Scheduler().Schedule(snapshot, request);
        Assert.All(result.Instances, i => Assert.Contains(i.NodeName, new[] { "b", "c" }));

        var none = Scheduler().Schedule(Cluster(Node("a", labels: L("zone=z1")), Node("d")), request).Pending!;
        Assert.Equal("1 node: node has no topology label zone; 1 node: required affinity app=db per zone not satisfied", none.ToString());

        var self = Req("cache", instances: 3) with
        {
            Affinity = [new AffinityTerm { MatchLabels = L("app=cache"), TopologyKey = TopologyKeys.Zone, Required = true }],
        };
        var grouped = Scheduler().Schedule(Cluster(Node("a", labels: L("zone=z1")), Node("b", labels: L("zone=z2")), Node("c", labels: L("zone=z1"))), self);
        Assert.True(grouped.IsFullyPlaced);
        Assert.Single(grouped.Instances.Select(i => i.NodeName == "b" ? "z2" : "z1").Distinct());
    }

    [Fact]
    public void PreferredAffinity_AndAntiAffinity_Score()
    {
        var snapshot = Cluster(Node("a"), Node("b", allocated: [Inst("db", 0, memGi: 0, cpu: 0)]), Node("c", allocated: [Inst("noisy", 0, memGi: 0, cpu: 0)]));
        var near = Req("web") with { Affinity = [new AffinityTerm { MatchLabels = L("app=db"), Weight = 100 }] };
        Assert.Equal("b", Scheduler().Schedule(snapshot, near).Instances[0].NodeName);

        var away = Req("web", instances: 1) with
        {
            Strategy = ScoringStrategy.BinPack,
            AntiAffinity = [new AffinityTerm { MatchLabels = L("app=noisy"), Weight = 100 }],
        };
        var explained = Scheduler().Explain(snapshot, away);
        var affinity = explained.Nodes.ToDictionary(n => n.NodeName, n => n.Scores.Single(s => s.Plugin == AffinityPlugin.PluginName).Score);
        Assert.Equal(100, affinity["a"]);
        Assert.Equal(0, affinity["c"]);
    }

    [Fact]
    public void BinPack_PrefersTheFullestNode_SpreadTheEmptiest()
    {
        var snapshot = Cluster(Node("a", allocated: [Inst("x", 0, memGi: 6, cpu: 600)]), Node("b"), Node("c", allocated: [Inst("x", 1, memGi: 2, cpu: 200)]));
        Assert.Equal("a", Scheduler(ScoringStrategy.BinPack).Schedule(snapshot, Req("web")).Instances[0].NodeName);
        Assert.Equal("b", Scheduler(ScoringStrategy.Spread).Schedule(snapshot, Req("web")).Instances[0].NodeName);
        Assert.Equal("a", Scheduler(ScoringStrategy.Spread).Schedule(snapshot, Req("web") with { Strategy = ScoringStrategy.BinPack }).Instances[0].NodeName);
    }

    [Fact]
    public void Spread_DistributesInstancesOverNodes_BinPackFillsOne()
    {
        var snapshot = Cluster(Node("a"), Node("b"), Node("c"));
        var spread = Scheduler(ScoringStrategy.Spread).Schedule(snapshot, Req("web", memGi: 0, cpu: 0, instances: 6));
        Assert.All(spread.Instances.GroupBy(i => i.NodeName), g => Assert.Equal(2, g.Count()));
        var packed = Scheduler(ScoringStrategy.BinPack).Schedule(snapshot, Req("web", memGi: 1, cpu: 100, instances: 6));
        Assert.Single(packed.Instances.Select(i => i.NodeName).Distinct());
    }

    [Fact]
    public void Ties_GoToTheSmallestNodeName()
    {
        var snapshot = Cluster(Node("n3"), Node("n1"), Node("n2"));
        Assert.Equal("n1", Scheduler().Schedule(snapshot, Req("web")).Instances[0].NodeName);
    }

    [Fact]
    public void Preemption_EvictsFewestLowestPriority_AndOnlyWhenNothingFits()
    {
        var snapshot = Cluster(
            Node("a", memGi: 4, allocated: [Inst("batch", 0, memGi: 1, priority: 1), Inst("batch", 1, memGi: 1, priority: 1), Inst("batch", 2, memGi: 2, priority: 1)]),
            Node("b", memGi: 4, allocated: [Inst("low", 0, memGi: 4, priority: 0)]),
            Node("c", memGi: 4, allocated: [Inst("vip", 0, memGi: 4, priority: 10)]));
        var result = Scheduler().Schedule(snapshot, Req("web", memGi: 2, priority: 5));
        Assert.Equal("b", result.Instances[0].NodeName);
        Assert.True(result.Instances[0].Preempted);
        Assert.Equal("low-0", Assert.Single(result.Victims).Instance.InstanceId);

        var fits = Cluster(snapshot.Nodes.Append(Node("d", memGi: 4)).ToArray());
        var noPreempt = Scheduler().Schedule(fits, Req("web", memGi: 2, priority: 5));
        Assert.Equal("d", noPreempt.Instances[0].NodeName);
        Assert.Empty(noPreempt.Victims);
    }

    [Fact]
    public void Preemption_PrefersOneBigVictimOverTwoSmall_AndHonoursMinAvailable()
    {
        var snapshot = Cluster(
            Node("a", memGi: 4, allocated: [Inst("small", 0, memGi: 2, priority: 0), Inst("small", 1, memGi: 2, priority: 0)]),
            Node("b", memGi: 4, allocated: [Inst("big", 0, memGi: 4, priority: 1, minAvailable: 0)]));
        var result = Scheduler().Schedule(snapshot, Req("web", memGi: 4, priority: 5));
        Assert.Equal("b", result.Instances[0].NodeName);

        var guarded = Cluster(
            Node("a", memGi: 4, allocated: [Inst("small", 0, memGi: 2, priority: 0), Inst("small", 1, memGi: 2, priority: 0)]),
            Node("b", memGi: 4, allocated: [Inst("big", 0, memGi: 4, priority: 1, minAvailable: 1)]));
        var second = Scheduler().Schedule(guarded, Req("web", memGi: 4, priority: 5));
        Assert.Equal("a", second.Instances[0].NodeName);
        Assert.Equal(2, second.Victims.Count);

        var budgeted = Cluster(Node("a", memGi: 4, allocated: [Inst("s", 0, memGi: 4, minAvailable: 1)]));
        var pending = Scheduler().Schedule(budgeted, Req("web", memGi: 4, priority: 5));
        Assert.False(pending.IsFullyPlaced);
        Assert.True(pending.Pending!.PreemptionAttempted);
        Assert.Equal("1 node: insufficient memory", pending.Pending.ToString());
    }

    [Fact]
    public void Preemption_NeverEvictsEqualOrHigherPriority()
    {
        var snapshot = Cluster(Node("a", memGi: 2, allocated: [Inst("same", 0, memGi: 2, priority: 5)]));
        var result = Scheduler().Schedule(snapshot, Req("web", memGi: 2, priority: 5));
        Assert.False(result.IsFullyPlaced);
        Assert.Empty(result.Victims);
    }

    [Fact]
    public void Options_DisableAndWeighPluginsByName()
    {
        var snapshot = Cluster(Node("a", taints: [new Taint("gpu", "true", TaintEffect.NoSchedule)]));
        var scheduler = PipelineScheduler.CreateDefault(new SchedulerOptions { DisabledPlugins = [TaintTolerationPlugin.PluginName] });
        Assert.Equal("a", scheduler.Schedule(snapshot, Req("web")).Instances[0].NodeName);
        Assert.DoesNotContain(scheduler.Filters, f => f.Name == TaintTolerationPlugin.PluginName);

        var weighted = PipelineScheduler.CreateDefault(new SchedulerOptions { ScoreWeights = { [ResourceAllocationScore.PluginName] = 5 } });
        var explained = weighted.Explain(Cluster(Node("a")), Req("web"));
        Assert.Equal(5, explained.Nodes[0].Scores.Single(s => s.Plugin == ResourceAllocationScore.PluginName).Weight);
    }

    [Fact]
    public void DuplicatePluginNames_AreRejected()
        => Assert.Throws<ArgumentException>(() => PipelineScheduler.CreateDefault(extraFilters: [new NodeReadyFilter()]));

    [Fact]
    public void CustomPlugin_TakesPartInThePipeline()
    {
        var scheduler = PipelineScheduler.CreateDefault(extraFilters: [new NoOddNodes()]);
        var result = scheduler.Schedule(Cluster(Node("n1"), Node("n2")), Req("web"));
        Assert.Equal("n2", result.Instances[0].NodeName);
        Assert.Equal("1 node: odd node", scheduler.Schedule(Cluster(Node("n1")), Req("web")).Pending!.ToString());
    }

    [Fact]
    public void Explain_ReportsEveryFilterAndScore_AndMatchesSchedule()
    {
        var snapshot = Cluster(Node("a", memGi: 1, allocated: [Inst("x", 0)]), Node("b"));
        var explanation = Scheduler().Explain(snapshot, Req("web"));
        Assert.Equal(2, explanation.Nodes.Count);
        Assert.False(explanation.Nodes[0].Feasible);
        Assert.Equal(Scheduler().Filters.Count, explanation.Nodes[0].Filters.Count);
        Assert.True(explanation.Nodes[1].Feasible);
        Assert.Equal(explanation.Nodes[1].TotalScore, explanation.Result.Instances[0].Score);
        Assert.Equal("b", explanation.Result.Instances[0].NodeName);
    }

    private sealed class NoOddNodes : IFilterPlugin
    {
        public string Name => "NoOddNodes";

        public FilterResult Filter(PlacementContext context, in NodeState node)
            => (node.Node.Name[^1] - '0') % 2 == 1 ? FilterResult.Fail("odd node") : FilterResult.Pass;
    }
}
