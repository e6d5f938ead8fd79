using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Tests.Scheduling;

internal static class SchedulingTestData
{
    public const long Gi = 1L << 30;

    public static Dictionary<string, string> L(params string[] pairs)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in pairs)
        {
            var kv = p.Split('=');
            d[kv[0]] = kv[1];
        }

        return d;
    }

    public static SchedulerNode Node(string name, long memGi = 8, long cpu = 1000, int slots = 100, Dictionary<string, string>? labels = null, Taint[]? taints = null, PlacedInstance[]? allocated = null)
        => new()
        {
            Name = name,
            Capacity = new NodeCapacity(memGi * Gi, cpu, slots),
            Labels = labels ?? [],
            Taints = taints ?? [],
            Allocated = allocated ?? [],
        };

    public static PlacedInstance Inst(string deployment, int index, long memGi = 1, int cpu = 100, int priority = 0, int minAvailable = 0, Dictionary<string, string>? labels = null)
        => new()
        {
            InstanceId = $"{deployment}-{index}",
            Deployment = deployment,
            MemoryBytes = memGi * Gi,
            CpuWeight = cpu,
            Priority = priority,
            MinAvailable = minAvailable,
            Labels = labels ?? L($"app={deployment}"),
        };

    public static PlacementRequest Req(string deployment, long memGi = 1, int cpu = 100, int instances = 1, int priority = 0)
        => new() { Deployment = deployment, MemoryBytes = memGi * Gi, CpuWeight = cpu, Instances = instances, Priority = priority, Labels = L($"app={deployment}") };

    public static ClusterSnapshot Cluster(params SchedulerNode[] nodes) => new(nodes);

    public static PipelineScheduler Scheduler(ScoringStrategy strategy = ScoringStrategy.Spread)
        => PipelineScheduler.CreateDefault(new SchedulerOptions { DefaultStrategy = strategy });
}
