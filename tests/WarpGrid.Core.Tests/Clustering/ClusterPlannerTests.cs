using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Tests.Clustering;

public sealed class ClusterPlannerTests
{
    private readonly ClusterPlanner _planner = new(PipelineScheduler.CreateDefault());

    private static PlannerDeployment Deployment(string name, int minInstances = 1, string memory = "64MB", long revision = 10, string package = "", string placement = "")
    {
        var manifest = $"[package]\nname = \"{name}\"\n{package}\n[runtime]\nmin_instances = {minInstances}\n\n[runtime.resources]\nmemory_limit = \"{memory}\"\n\n{placement}";
        var record = new DeploymentRecord { Name = name, Version = "0.1.0", Manifest = manifest, Digest = "sha256:" + new string('a', 64), Revision = revision };
        return new PlannerDeployment(record, DeploymentManager.ParseManifest(manifest));
    }

    private static PlannerNode Node(string name, NodeStatus status = NodeStatus.Ready, bool draining = false, bool cordoned = false, long memory = 1L << 30, IReadOnlyList<RunningReport>? running = null, List<NodeTaint>? taints = null, Dictionary<string, string>? labels = null) =>
        new(new NodeRecord { Name = name, MemoryBytes = memory, CpuWeight = 10_000, InstanceSlots = 100, Draining = draining, Cordoned = cordoned || draining, Taints = taints ?? [], Labels = labels ?? [] }, status, running ?? []);

    private static PlannerAllocation Alloc(PlannerDeployment d, string node, int instances, long modRevision = 20) =>
        new(new AllocationRecord { Node = node, Deployment = d.Record.Name, Instances = instances, TotalInstances = instances, DeploymentRevision = d.Record.Revision, Record = d.Record }, modRevision);

    [Fact]
    public void New_deployments_are_spread_over_ready_nodes()
    {
        var web = Deployment("web", minInstances: 2);
        var plan = _planner.Plan([web], [Node("a"), Node("b"), Node("c", NodeStatus.NotReady)], []);
        Assert.Equal(1, plan.Allocations[("a", "web")]);
        Assert.Equal(1, plan.Allocations[("b", "web")]);
        Assert.False(plan.Allocations.ContainsKey(("c", "web")));
        var placement = Assert.Single(plan.Deployments);
        Assert.Equal((2, 2), (placement.Desired, placement.Placed));
        Assert.Null(placement.Message);
    }

    [Fact]
    public void Instances_on_a_lost_node_move_to_a_node_that_fits_and_the_lost_node_keeps_nothing()
    {
        var web = Deployment("web");
        var plan = _planner.Plan([web], [Node("a", NodeStatus.Lost), Node("b"), Node("c", cordoned: true)], [Alloc(web, "a", 1)]);
        Assert.Equal(new Dictionary<(string, string), int> { [("b", "web")] = 1 }, plan.Allocations);
        var move = Assert.Single(plan.Moves);
        Assert.Equal(("a", "b"), (move.FromNode, move.ToNode));
    }

    [Fact]
    public void A_drain_starts_the_replacement_first_and_removes_the_drained_instance_once_it_runs()
    {
        var web = Deployment("web");
        var nodes = new[] { Node("a", draining: true), Node("b") };

        // Pass 1: the replacement is allocated on b; a keeps its instance meanwhile.
        var plan1 = _planner.Plan([web], nodes, [Alloc(web, "a", 1)]);
        Assert.Equal(1, plan1.Allocations[("a", "web")]);
        Assert.Equal(1, plan1.Allocations[("b", "web")]);
        Assert.Equal(1, plan1.Deployments[0].Draining);
        Assert.Contains("draining", plan1.Deployments[0].Message, StringComparison.Ordinal);

        // Pass 2: b's allocation is written but not yet reported running: nothing changes, nothing is added twice.
        var written = new[] { Alloc(web, "a", 1, 20), Alloc(web, "b", 1, 21) };
        var plan2 = _planner.Plan([web], nodes, written);
        Assert.Equal(plan1.Allocations, plan2.Allocations);

        // Pass 3: b reports it running at that allocation revision: a's instance goes.
        var running = new[] { Node("a", draining: true), Node("b", running: [new RunningReport("web", 21, 1, true)]) };
        var plan3 = _planner.Plan([web], running, written);
        Assert.Equal(new Dictionary<(string, string), int> { [("b", "web")] = 1 }, plan3.Allocations);
        Assert.Null(plan3.Deployments[0].Message);
    }

    [Fact]
    public void What_no_node_can_take_is_pending_with_the_count_of_nodes_per_reason()
    {
        var big = Deployment("big", minInstances: 1, memory: "1GB");
        var gpu = new List<NodeTaint> { new("gpu", "true", TaintEffect.NoSchedule) };
        var plan = _planner.Plan([big], [Node("a", memory: 512L << 20), Node("b", memory: 512L << 20), Node("c", taints: gpu), Node("d", NodeStatus.Lost)], []);
        Assert.Empty(plan.Allocations);
        var placement = Assert.Single(plan.Deployments);
        Assert.Equal("1 of 1 instance(s) pending: 2 nodes: insufficient memory; 1 node: node lost; 1 node: taint gpu=true not tolerated", placement.Message);
    }

    [Fact]
    public void Scaling_down_removes_from_the_fullest_node_and_deleted_deployments_lose_their_allocations()
    {
        var web = Deployment("web", minInstances: 2);
        var gone = Deployment("gone");
        var plan = _planner.Plan([web], [Node("a"), Node("b")], [Alloc(web, "a", 2), Alloc(web, "b", 1), Alloc(gone, "a", 1)]);
        Assert.Equal(new Dictionary<(string, string), int> { [("a", "web")] = 1, [("b", "web")] = 1 }, plan.Allocations);
    }

    [Fact]
    public void The_same_inputs_give_the_same_plan()
    {
        var deps = new[] { Deployment("a1", 3), Deployment("b2", 2), Deployment("c3", 1) };
        var nodes = new[] { Node("n3"), Node("n1"), Node("n2", draining: true) };
        var first = _planner.Plan(deps, nodes, []);
        var second = _planner.Plan([.. deps.Reverse()], [.. nodes.Reverse()], []);
        Assert.Equal(first.Allocations, second.Allocations);
    }

    [Fact]
    public void The_manifest_placement_section_constrains_where_instances_go()
    {
        var z1 = new Dictionary<string, string> { ["zone"] = "z1" };
        var z2 = new Dictionary<string, string> { ["zone"] = "z2" };
        var gpu = new List<NodeTaint> { new("gpu", "true", TaintEffect.NoSchedule) };
        var nodes = new[] { Node("a", labels: z1), Node("b", labels: z2), Node("c", labels: z1, taints: gpu) };

        // node_selector: only z1 nodes; the tainted z1 node only for the deployment that tolerates it.
        var web = Deployment("web", minInstances: 2, package: "labels = { app = \"web\" }", placement: "[placement]\nnode_selector = { zone = \"z1\" }\n");
        var worker = Deployment("worker", minInstances: 1, placement: "[placement]\nnode_selector = { zone = \"z1\" }\nstrategy = \"binpack\"\n[[placement.tolerations]]\nkey = \"gpu\"\nvalue = \"true\"\n[[placement.affinity]]\nmatch_labels = { app = \"web\" }\n");
        var plan = _planner.Plan([web, worker], nodes, []);
        Assert.Equal(new Dictionary<(string, string), int> { [("a", "web")] = 2, [("a", "worker")] = 1 }, plan.Allocations);

        // Required anti-affinity against itself: one per node, so the third instance is pending, and the message names the constraints.
        var spread = Deployment("spread", minInstances: 3, package: "labels = { app = \"spread\" }", placement: "[placement]\n[[placement.anti_affinity]]\nmatch_labels = { app = \"spread\" }\n");
        var plan2 = _planner.Plan([spread], nodes, []);
        Assert.Equal(1, plan2.Allocations[("a", "spread")]);
        Assert.Equal(1, plan2.Allocations[("b", "spread")]);
        var placement = Assert.Single(plan2.Deployments);
        Assert.Equal("anti_affinity app=spread per node (required)", placement.Constraints);
        Assert.StartsWith("1 of 3 instance(s) pending: ", placement.Message, StringComparison.Ordinal);
        Assert.Contains("taint gpu=true not tolerated", placement.Message, StringComparison.Ordinal);
        Assert.EndsWith("(placement: anti_affinity app=spread per node (required))", placement.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_higher_priority_deployment_preempts_a_lower_one_and_placed_instances_carry_priority_and_budget()
    {
        var low = Deployment("low", minInstances: 2, memory: "400MB", placement: "[placement]\npriority = \"low\"\n");
        var high = Deployment("high", minInstances: 1, memory: "400MB", placement: "[placement]\npriority = \"high\"\n");
        var nodes = new[] { Node("a", memory: 800L << 20) };
        var plan = _planner.Plan([high, low], nodes, [Alloc(low, "a", 2)]);
        Assert.Equal(new Dictionary<(string, string), int> { [("a", "high")] = 1, [("a", "low")] = 1 }, plan.Allocations);
        var victim = Assert.Single(plan.Victims);
        Assert.Equal(("low", -100), (victim.Instance.Deployment, victim.Instance.Priority));

        // With min_available = 2 the low deployment may not lose one: high stays pending.
        var guarded = Deployment("low", minInstances: 2, memory: "400MB", placement: "[placement]\npriority = \"low\"\nmin_available = 2\n");
        var plan2 = _planner.Plan([high, guarded], nodes, [Alloc(guarded, "a", 2)]);
        Assert.Empty(plan2.Victims);
        Assert.Equal(new Dictionary<(string, string), int> { [("a", "low")] = 2 }, plan2.Allocations);
        Assert.Contains("pending", plan2.Deployments.First(d => d.Deployment == "high").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_NoExecute_taint_moves_untolerating_instances_make_before_break_and_keeps_tolerating_ones()
    {
        var web = Deployment("web");
        var ops = Deployment("ops", placement: "[placement]\n[[placement.tolerations]]\nkey = \"maintenance\"\noperator = \"Exists\"\neffect = \"NoExecute\"\n");
        var evict = new List<NodeTaint> { new("maintenance", "now", TaintEffect.NoExecute) };
        var nodes = new[] { Node("a", taints: evict), Node("b") };
        var allocations = new[] { Alloc(web, "a", 1, 20), Alloc(ops, "a", 1, 20) };

        // Pass 1: web's replacement goes to b, web stays on a meanwhile; ops tolerates the taint and stays.
        var plan1 = _planner.Plan([web, ops], nodes, allocations);
        Assert.Equal(new Dictionary<(string, string), int> { [("a", "web")] = 1, [("b", "web")] = 1, [("a", "ops")] = 1 }, plan1.Allocations);
        var move = Assert.Single(plan1.Moves);
        Assert.Equal(("web", "a", "b"), (move.Instance.Deployment, move.FromNode, move.ToNode));
        Assert.Equal(1, plan1.Deployments.First(d => d.Deployment == "web").Draining);
        Assert.Contains("NoExecute", plan1.Deployments.First(d => d.Deployment == "web").Message, StringComparison.Ordinal);

        // Pass 2: the replacement runs on b: web leaves a; ops is still there.
        var written = new[] { Alloc(web, "a", 1, 20), Alloc(web, "b", 1, 21), Alloc(ops, "a", 1, 20) };
        var running = new[] { Node("a", taints: evict), Node("b", running: [new RunningReport("web", 21, 1, true)]) };
        var plan2 = _planner.Plan([web, ops], running, written);
        Assert.Equal(new Dictionary<(string, string), int> { [("b", "web")] = 1, [("a", "ops")] = 1 }, plan2.Allocations);
        Assert.All(plan2.Deployments, d => Assert.Null(d.Message));

        // No other node can take it: it stays (a drain never breaks before it makes) and says why.
        var alone = _planner.Plan([web], [Node("a", taints: evict)], [Alloc(web, "a", 1)]);
        Assert.Equal(new Dictionary<(string, string), int> { [("a", "web")] = 1 }, alone.Allocations);
        Assert.Equal("1 of 1 instance(s) pending: 1 node: taint maintenance=now not tolerated", alone.Deployments[0].Message);
    }
}
