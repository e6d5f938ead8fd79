namespace WarpGrid.Core.Scheduling;

/// <summary>Settings of <see cref="PipelineScheduler"/>; bound from <c>WarpGrid:Scheduler</c>.</summary>
public sealed class SchedulerOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Scheduler";

    /// <summary>The strategy for requests that say <see cref="ScoringStrategy.Default"/>. Default: <see cref="ScoringStrategy.Spread"/>.</summary>
    public ScoringStrategy DefaultStrategy { get; set; } = ScoringStrategy.Spread;

    /// <summary>Score plugin name → weight (0 disables the plugin's score). Plugins not listed weigh 1.</summary>
    public Dictionary<string, int> ScoreWeights { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Names of filter or score plugins to leave out of the pipeline.</summary>
    public HashSet<string> DisabledPlugins { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Whether a request may evict lower-priority instances when no node fits. Default: true.</summary>
    public bool EnablePreemption { get; set; } = true;

    /// <summary>
    /// Stop looking once this share of nodes (1..100) passed the filters, as Kubernetes' <c>percentageOfNodesToScore</c>.
    /// 0 (default) is adaptive: 50% − 1% per 125 nodes, at least 5%. Never fewer than <see cref="MinFeasibleNodesToFind"/>.
    /// </summary>
    public int PercentageOfNodesToScore { get; set; }

    /// <summary>The floor of feasible nodes to score before stopping early. Default: 100.</summary>
    public int MinFeasibleNodesToFind { get; set; } = 100;
}
