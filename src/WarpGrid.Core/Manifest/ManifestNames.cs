using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Manifest;

/// <summary>The TOML spellings of the manifest enums.</summary>
internal static class ManifestNames
{
    public static readonly IReadOnlyList<(string Name, TriggerKind Value)> Triggers =
    [
        ("http", TriggerKind.Http),
        ("cli", TriggerKind.Cli),
    ];

    public static readonly IReadOnlyList<(string Name, BuildLanguage Value)> Languages =
    [
        ("c", BuildLanguage.C),
        ("cpp", BuildLanguage.Cpp),
        ("rust", BuildLanguage.Rust),
        ("go", BuildLanguage.Go),
        ("zig", BuildLanguage.Zig),
        ("typescript", BuildLanguage.TypeScript),
        ("javascript", BuildLanguage.JavaScript),
        ("wat", BuildLanguage.Wat),
    ];

    public static readonly IReadOnlyList<(string Name, ScalingMetric Value)> Metrics =
    [
        ("request_concurrency", ScalingMetric.RequestConcurrency),
        ("cpu", ScalingMetric.Cpu),
        ("custom", ScalingMetric.Custom),
    ];

    public static readonly IReadOnlyList<(string Name, ScoringStrategy Value)> Strategies =
    [
        ("binpack", ScoringStrategy.BinPack),
        ("spread", ScoringStrategy.Spread),
    ];

    public static readonly IReadOnlyList<(string Name, TolerationOperator Value)> Operators =
    [
        ("Equal", TolerationOperator.Equal),
        ("Exists", TolerationOperator.Exists),
    ];

    public static readonly IReadOnlyList<(string Name, TaintEffect Value)> Effects =
    [
        ("NoSchedule", TaintEffect.NoSchedule),
        ("PreferNoSchedule", TaintEffect.PreferNoSchedule),
        ("NoExecute", TaintEffect.NoExecute),
    ];

    public static string ToToml(ScoringStrategy value) => NameOf(Strategies, value);

    public static string ToToml(TolerationOperator value) => NameOf(Operators, value);

    public static string ToToml(TaintEffect value) => NameOf(Effects, value);

    public static string ToToml(TriggerKind value) => NameOf(Triggers, value);

    public static string ToToml(BuildLanguage value) => NameOf(Languages, value);

    public static string ToToml(ScalingMetric value) => NameOf(Metrics, value);

    private static string NameOf<T>(IReadOnlyList<(string Name, T Value)> table, T value)
        where T : struct, Enum
    {
        foreach (var (name, candidate) in table)
        {
            if (EqualityComparer<T>.Default.Equals(candidate, value))
            {
                return name;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(value), value, $"Unknown {typeof(T).Name} value.");
    }
}
