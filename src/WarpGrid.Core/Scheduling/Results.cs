using System.Text;

namespace WarpGrid.Core.Scheduling;

/// <summary>Why an instance could not be placed: for each reason, how many nodes gave it (each node counts once, with its first failing filter).</summary>
public sealed class PlacementExplanation
{
    internal PlacementExplanation(IReadOnlyList<ReasonCount> reasons, bool preemptionAttempted)
    {
        Reasons = reasons;
        PreemptionAttempted = preemptionAttempted;
    }

    /// <summary>Reasons sorted by node count (descending), then reason (ordinal).</summary>
    public IReadOnlyList<ReasonCount> Reasons { get; }

    /// <summary>Whether preemption was tried and found no node where evicting lower-priority instances would help.</summary>
    public bool PreemptionAttempted { get; }

    /// <summary>The one-line form: <c>3 nodes: insufficient memory; 2 nodes: taint gpu=true not tolerated</c>.</summary>
    public override string ToString()
    {
        if (Reasons.Count == 0)
        {
            return "0 nodes in the cluster";
        }

        var sb = new StringBuilder();
        foreach (var r in Reasons)
        {
            if (sb.Length > 0)
            {
                sb.Append("; ");
            }

            sb.Append(r.NodeCount).Append(r.NodeCount == 1 ? " node: " : " nodes: ").Append(r.Reason);
        }

        return sb.ToString();
    }
}

/// <summary>A reason a filter rejected nodes, and on how many nodes.</summary>
/// <param name="Reason">The filter's reason, e.g. <c>insufficient memory</c>.</param>
/// <param name="NodeCount">How many nodes failed with it.</param>
public readonly record struct ReasonCount(string Reason, int NodeCount);

/// <summary>An instance evicted to make room for a higher-priority one.</summary>
/// <param name="NodeName">The node it ran on.</param>
/// <param name="Instance">The evicted instance.</param>
public sealed record PreemptionVictim(string NodeName, PlacedInstance Instance);

/// <summary>Where one instance of a request went, or why it is pending.</summary>
public sealed record InstancePlacement
{
    /// <summary>The instance's index within the request, 0-based.</summary>
    public required int Index { get; init; }

    /// <summary>The chosen node, or <see langword="null"/> when pending.</summary>
    public string? NodeName { get; init; }

    /// <summary>The instance to bind to <see cref="NodeName"/> (<see cref="ClusterState.Bind(PlacementResult)"/> does); <see langword="null"/> when pending.</summary>
    public PlacedInstance? Instance { get; init; }

    /// <summary>Why the instance is pending; <see langword="null"/> when placed.</summary>
    public PlacementExplanation? Pending { get; init; }

    /// <summary>Whether this instance needed preemption (its victims are in <see cref="PlacementResult.Victims"/>).</summary>
    public bool Preempted { get; init; }

    /// <summary>The weighted score of the chosen node.</summary>
    public long Score { get; init; }
}

/// <summary>The outcome of placing a request.</summary>
public sealed class PlacementResult
{
    internal PlacementResult(string deployment, IReadOnlyList<InstancePlacement> instances, IReadOnlyList<PreemptionVictim> victims)
    {
        Deployment = deployment;
        Instances = instances;
        Victims = victims;
    }

    /// <summary>The deployment placed.</summary>
    public string Deployment { get; }

    /// <summary>One entry per requested instance, in order.</summary>
    public IReadOnlyList<InstancePlacement> Instances { get; }

    /// <summary>Instances to evict before binding, in the order they were chosen.</summary>
    public IReadOnlyList<PreemptionVictim> Victims { get; }

    /// <summary>Whether every instance got a node.</summary>
    public bool IsFullyPlaced
    {
        get
        {
            foreach (var i in Instances)
            {
                if (i.NodeName is null)
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>The explanation of the first pending instance, if any.</summary>
    public PlacementExplanation? Pending
    {
        get
        {
            foreach (var i in Instances)
            {
                if (i.Pending is not null)
                {
                    return i.Pending;
                }
            }

            return null;
        }
    }
}

/// <summary>One filter's verdict on one node, as reported by <see cref="IScheduler.Explain"/>.</summary>
/// <param name="Plugin">The filter's <see cref="IFilterPlugin.Name"/>.</param>
/// <param name="Passed">Whether the node passed.</param>
/// <param name="Reason">The failure reason, when it failed.</param>
public sealed record FilterOutcome(string Plugin, bool Passed, string? Reason);

/// <summary>One score plugin's score for one node, as reported by <see cref="IScheduler.Explain"/>.</summary>
/// <param name="Plugin">The plugin's <see cref="IScorePlugin.Name"/>.</param>
/// <param name="Score">The raw score, 0..100.</param>
/// <param name="Weight">The weight it was multiplied by.</param>
public sealed record ScoreOutcome(string Plugin, long Score, int Weight);

/// <summary>Every filter and score for one node.</summary>
/// <param name="NodeName">The node.</param>
/// <param name="Filters">Every filter's verdict, in pipeline order (all run, even after a failure).</param>
/// <param name="Scores">Scores, when every filter passed; empty otherwise.</param>
/// <param name="TotalScore">Sum of score × weight, when every filter passed.</param>
public sealed record NodeExplanation(string NodeName, IReadOnlyList<FilterOutcome> Filters, IReadOnlyList<ScoreOutcome> Scores, long? TotalScore)
{
    /// <summary>Whether the node passed every filter.</summary>
    public bool Feasible => TotalScore is not null;
}

/// <summary>The full account of a scheduling decision: the result, and every node's filters and scores for the first instance.</summary>
/// <param name="Result">What <see cref="IScheduler.Schedule"/> decides for the same inputs.</param>
/// <param name="Nodes">Per node, in name order, evaluated against the snapshot before the first instance is placed.</param>
public sealed record SchedulingExplanation(PlacementResult Result, IReadOnlyList<NodeExplanation> Nodes);
