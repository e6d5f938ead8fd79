using System.Collections.Immutable;
using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Manifest;

/// <summary>
/// The <c>[placement]</c> section: where a cluster's scheduler may put the deployment's instances. It maps one to one
/// onto the scheduler's <see cref="PlacementRequest"/> (see docs/scheduler.md, "The [placement] section"). A
/// single node (no cluster) ignores it: the node runs everything it is given.
/// </summary>
public sealed record PlacementSection
{
    /// <summary>Lowest allowed integer <see cref="Priority"/>.</summary>
    public const int MinPriority = -1_000_000_000;

    /// <summary>Highest allowed integer <see cref="Priority"/>.</summary>
    public const int MaxPriority = 1_000_000_000;

    /// <summary>Highest allowed weight of a preferred (anti-)affinity term.</summary>
    public const int MaxWeight = 100;

    /// <summary>The named priority classes <c>placement.priority</c> accepts instead of an integer.</summary>
    public static readonly IReadOnlyList<(string Name, int Value)> PriorityClasses =
    [
        ("low", -100),
        ("normal", 0),
        ("high", 100),
        ("critical", 1000),
    ];

    private readonly ImmutableSortedDictionary<string, string> _nodeSelector = ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);
    private readonly ImmutableArray<Toleration> _tolerations = [];
    private readonly ImmutableArray<AffinityTerm> _affinity = [];
    private readonly ImmutableArray<AffinityTerm> _antiAffinity = [];

    /// <summary>Node labels a node must all carry with these exact values (<c>node_selector</c>); empty by default.</summary>
    public IReadOnlyDictionary<string, string> NodeSelector
    {
        get => _nodeSelector;
        init => _nodeSelector = (value ?? throw new ArgumentNullException(nameof(value))).ToImmutableSortedDictionary(StringComparer.Ordinal, StringComparer.Ordinal);
    }

    /// <summary>Taints the instances tolerate (<c>[[placement.tolerations]]</c>); empty by default.</summary>
    public IReadOnlyList<Toleration> Tolerations
    {
        get => _tolerations;
        init => _tolerations = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    /// <summary>Deployments to be near (<c>[[placement.affinity]]</c>); empty by default.</summary>
    public IReadOnlyList<AffinityTerm> Affinity
    {
        get => _affinity;
        init => _affinity = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    /// <summary>Deployments to be away from (<c>[[placement.anti_affinity]]</c>); empty by default.</summary>
    public IReadOnlyList<AffinityTerm> AntiAffinity
    {
        get => _antiAffinity;
        init => _antiAffinity = [.. value ?? throw new ArgumentNullException(nameof(value))];
    }

    /// <summary>Higher is placed first and may preempt strictly lower priorities; default 0.</summary>
    public int Priority { get; init; }

    /// <summary>The class name when the manifest gave <c>priority</c> as a name (see <see cref="PriorityClasses"/>), else <see langword="null"/>.</summary>
    public string? PriorityClass { get; init; }

    /// <summary>Instances preemption and drains never go below (<c>min_available</c>); default 0.</summary>
    public int MinAvailable { get; init; }

    /// <summary><c>binpack</c> or <c>spread</c>; <see cref="ScoringStrategy.Default"/> (absent) uses the cluster's default.</summary>
    public ScoringStrategy Strategy { get; init; }

    /// <summary>Whether nothing is set (the section is absent or holds only defaults).</summary>
    public bool IsDefault => Equals(new PlacementSection());

    /// <summary>
    /// The scheduler's request for <paramref name="instances"/> instances of the deployment <paramref name="deployment"/>
    /// labelled <paramref name="labels"/>, each reserving <paramref name="memoryBytes"/> and <paramref name="cpuWeight"/>.
    /// </summary>
    public PlacementRequest ToRequest(string deployment, IReadOnlyDictionary<string, string> labels, long memoryBytes, int cpuWeight, int instances)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        ArgumentNullException.ThrowIfNull(labels);
        return new PlacementRequest
        {
            Deployment = deployment,
            Labels = labels,
            MemoryBytes = memoryBytes,
            CpuWeight = cpuWeight,
            Instances = instances,
            Priority = Priority,
            NodeSelector = NodeSelector,
            Tolerations = Tolerations,
            Affinity = Affinity,
            AntiAffinity = AntiAffinity,
            Strategy = Strategy,
            MinAvailable = MinAvailable,
        };
    }

    /// <summary>Whether the instances tolerate every <see cref="TaintEffect.NoExecute"/> taint in <paramref name="taints"/>.</summary>
    public bool ToleratesNoExecute(IEnumerable<Taint> taints)
    {
        ArgumentNullException.ThrowIfNull(taints);
        foreach (var taint in taints)
        {
            if (taint.Effect == TaintEffect.NoExecute && !_tolerations.Any(t => t.Tolerates(taint)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A one-line account of the constraints for <c>warp status</c>, or <see langword="null"/> when there are none.</summary>
    public string? Describe()
    {
        var parts = new List<string>();
        if (_nodeSelector.Count > 0)
        {
            parts.Add("node_selector " + string.Join(",", _nodeSelector.Select(p => p.Key + "=" + p.Value)));
        }

        if (_tolerations.Length > 0)
        {
            parts.Add("tolerates " + string.Join(",", _tolerations.Select(DescribeToleration)));
        }

        foreach (var (name, terms) in new[] { ("affinity", _affinity), ("anti_affinity", _antiAffinity) })
        {
            foreach (var term in terms)
            {
                parts.Add(FormattableString.Invariant($"{name} {term.Selector()} per {term.TopologyKey} ({(term.Required ? "required" : "preferred, weight " + term.Weight)})"));
            }
        }

        if (Priority != 0 || PriorityClass is not null)
        {
            parts.Add(PriorityClass is null
                ? FormattableString.Invariant($"priority {Priority}")
                : FormattableString.Invariant($"priority {PriorityClass} ({Priority})"));
        }

        if (MinAvailable > 0)
        {
            parts.Add(FormattableString.Invariant($"min_available {MinAvailable}"));
        }

        if (Strategy != ScoringStrategy.Default)
        {
            parts.Add("strategy " + ManifestNames.ToToml(Strategy));
        }

        return parts.Count == 0 ? null : string.Join("; ", parts);
    }

    /// <inheritdoc />
    public bool Equals(PlacementSection? other) =>
        other is not null
        && Priority == other.Priority
        && string.Equals(PriorityClass, other.PriorityClass, StringComparison.Ordinal)
        && MinAvailable == other.MinAvailable
        && Strategy == other.Strategy
        && _nodeSelector.Count == other._nodeSelector.Count
        && _nodeSelector.All(p => other._nodeSelector.TryGetValue(p.Key, out var v) && string.Equals(p.Value, v, StringComparison.Ordinal))
        && _tolerations.SequenceEqual(other._tolerations)
        && SameTerms(_affinity, other._affinity)
        && SameTerms(_antiAffinity, other._antiAffinity);

    /// <inheritdoc />
    public override int GetHashCode() =>
        HashCode.Combine(Priority, MinAvailable, Strategy, _nodeSelector.Count, _tolerations.Length, _affinity.Length, _antiAffinity.Length);

    internal static string DescribeToleration(Toleration t)
    {
        var text = t.Key.Length == 0 ? "*" : t.Operator == TolerationOperator.Exists ? t.Key : t.Key + "=" + t.Value;
        return t.Effect is { } effect ? text + ":" + effect : text;
    }

    private static bool SameTerms(ImmutableArray<AffinityTerm> a, ImmutableArray<AffinityTerm> b) =>
        a.Length == b.Length && a.Zip(b).All(p =>
            p.First.Required == p.Second.Required
            && p.First.Weight == p.Second.Weight
            && string.Equals(p.First.TopologyKey, p.Second.TopologyKey, StringComparison.Ordinal)
            && p.First.MatchLabels.Count == p.Second.MatchLabels.Count
            && p.First.MatchLabels.All(l => p.Second.MatchLabels.TryGetValue(l.Key, out var v) && string.Equals(l.Value, v, StringComparison.Ordinal)));
}
