using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using WarpGrid.Core.Scheduling;
using WarpGrid.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddWarpGridNode()
    .AddSchedulerPlugin<PreferCheapZone>(); // a user plugin: one class (below) and this one line

// The sample only asks the scheduler for decisions; it does not start the node.
using var host = builder.Build();
var scheduler = host.Services.GetRequiredService<IScheduler>();

var snapshot = new ClusterSnapshot(
[
    new SchedulerNode { Name = "eu-1", Labels = new Dictionary<string, string> { ["zone"] = "eu" }, Capacity = new(8L << 30, 1000, 100) },
    new SchedulerNode { Name = "us-1", Labels = new Dictionary<string, string> { ["zone"] = "us", ["cheap"] = "true" }, Capacity = new(8L << 30, 1000, 100) },
    new SchedulerNode { Name = "gpu-1", Taints = [new Taint("gpu", "true", TaintEffect.NoSchedule)], Capacity = new(8L << 30, 1000, 100) },
]);
var request = new PlacementRequest { Deployment = "hello", MemoryBytes = 64L << 20, CpuWeight = 100, Instances = 2 };

var explanation = scheduler.Explain(snapshot, request);
foreach (var instance in explanation.Result.Instances)
{
    Console.WriteLine($"instance {instance.Index} -> {instance.NodeName ?? "pending: " + instance.Pending}");
}

foreach (var node in explanation.Nodes)
{
    string verdict = node.Feasible
        ? "score " + node.TotalScore + " (" + string.Join(", ", node.Scores.Select(s => $"{s.Plugin}={s.Score}x{s.Weight}")) + ")"
        : string.Join(", ", node.Filters.Where(f => !f.Passed).Select(f => f.Reason));
    Console.WriteLine($"  {node.NodeName}: {verdict}");
}

var tooBig = scheduler.Schedule(snapshot, request with { MemoryBytes = 16L << 30 });
Console.WriteLine($"too big: {tooBig.Pending}");

/// <summary>Prefers nodes labelled <c>cheap=true</c>.</summary>
public sealed class PreferCheapZone : IScorePlugin
{
    public string Name => "PreferCheapZone";

    public long Score(PlacementContext context, in NodeState node)
        => node.Node.Labels.TryGetValue("cheap", out var cheap) && cheap == "true" ? 100 : 0;
}
