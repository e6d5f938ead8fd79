namespace WarpGrid.Core.Manifest;

/// <summary>The <c>[health]</c> section: an HTTP health probe.</summary>
public sealed record HealthSection
{
    /// <summary>Default of <see cref="Interval"/>: 10 seconds.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    /// <summary>Default of <see cref="Timeout"/>: 2 seconds.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Default of <see cref="UnhealthyThreshold"/>.</summary>
    public const int DefaultUnhealthyThreshold = 3;

    /// <summary>Default of <see cref="HealthyThreshold"/>.</summary>
    public const int DefaultHealthyThreshold = 1;

    /// <summary>Path of the liveness probe, starting with <c>/</c>. Required when the section is present.</summary>
    public required string Endpoint { get; init; }

    /// <summary>
    /// Path of the readiness probe, when it differs from the liveness probe <see cref="Endpoint"/>. Null: one probe
    /// of <see cref="Endpoint"/> serves both (a failure takes the instance out of rotation at once; it is replaced
    /// after <see cref="UnhealthyThreshold"/> failures in a row).
    /// </summary>
    public string? ReadinessEndpoint { get; init; }

    /// <summary>Time between probes, greater than zero; default 10 s.</summary>
    public TimeSpan Interval { get; init; } = DefaultInterval;

    /// <summary>Time allowed per probe, greater than zero and at most <see cref="Interval"/>; default 2 s.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>Consecutive failures before an instance is unhealthy, at least 1; default 3.</summary>
    public int UnhealthyThreshold { get; init; } = DefaultUnhealthyThreshold;

    /// <summary>Consecutive successes before an instance is healthy again, at least 1; default 1.</summary>
    public int HealthyThreshold { get; init; } = DefaultHealthyThreshold;
}
