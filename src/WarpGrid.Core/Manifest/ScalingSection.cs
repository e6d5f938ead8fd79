namespace WarpGrid.Core.Manifest;

/// <summary>The metric the autoscaler tracks (<c>runtime.scaling.metric</c>).</summary>
public enum ScalingMetric
{
    /// <summary><c>request_concurrency</c>: in-flight requests per instance (default).</summary>
    RequestConcurrency,

    /// <summary><c>cpu</c>: CPU utilisation per instance.</summary>
    Cpu,

    /// <summary><c>custom</c>: the metric named by <see cref="ScalingSection.CustomMetric"/>.</summary>
    Custom,
}

/// <summary>The <c>[runtime.scaling]</c> section: autoscaling policy.</summary>
public sealed record ScalingSection
{
    /// <summary>Default of <see cref="TargetValue"/>.</summary>
    public const double DefaultTargetValue = 10;

    /// <summary>Default of <see cref="ScaleUpWindow"/>: zero.</summary>
    public static readonly TimeSpan DefaultScaleUpWindow = TimeSpan.Zero;

    /// <summary>Default of <see cref="ScaleDownWindow"/>: 5 minutes.</summary>
    public static readonly TimeSpan DefaultScaleDownWindow = TimeSpan.FromMinutes(5);

    /// <summary>The tracked metric; default <see cref="ScalingMetric.RequestConcurrency"/>.</summary>
    public ScalingMetric Metric { get; init; } = ScalingMetric.RequestConcurrency;

    /// <summary>Target value of the metric per instance, greater than zero; default 10.</summary>
    public double TargetValue { get; init; } = DefaultTargetValue;

    /// <summary>Stabilisation window before scaling up; default zero.</summary>
    public TimeSpan ScaleUpWindow { get; init; } = DefaultScaleUpWindow;

    /// <summary>Stabilisation window before scaling down; default 5 minutes.</summary>
    public TimeSpan ScaleDownWindow { get; init; } = DefaultScaleDownWindow;

    /// <summary>Name of the custom metric: set exactly when <see cref="Metric"/> is <see cref="ScalingMetric.Custom"/>.</summary>
    public string? CustomMetric { get; init; }
}
