namespace WarpGrid.Core.Manifest;

/// <summary>How a workload is invoked (<c>runtime.trigger</c>).</summary>
public enum TriggerKind
{
    /// <summary><c>http</c>: invoked per HTTP request routed by the ingress (default).</summary>
    Http,

    /// <summary><c>cli</c>: invoked as a command (run to completion).</summary>
    Cli,
}

/// <summary>The <c>[runtime]</c> section: triggering, instance counts, routing, resources and scaling.</summary>
public sealed record RuntimeSection
{
    /// <summary>Default of <see cref="MinInstances"/>.</summary>
    public const int DefaultMinInstances = 1;

    /// <summary>Default of <see cref="MaxInstances"/>.</summary>
    public const int DefaultMaxInstances = 10;

    /// <summary>Largest allowed <see cref="MaxInstances"/> (and <see cref="MinInstances"/>).</summary>
    public const int InstancesLimit = 10_000;

    /// <summary>Default of <see cref="RequestTimeout"/>: 30 seconds.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Largest allowed <see cref="RequestTimeout"/>: 1 hour.</summary>
    public static readonly TimeSpan MaxRequestTimeout = TimeSpan.FromHours(1);

    /// <summary>How the workload is invoked; default <see cref="TriggerKind.Http"/>.</summary>
    public TriggerKind Trigger { get; init; } = TriggerKind.Http;

    /// <summary>Instances kept warm, 0..10000; default 1.</summary>
    public int MinInstances { get; init; } = DefaultMinInstances;

    /// <summary>Upper bound of instances, 1..10000 and at least <see cref="MinInstances"/>; default 10.</summary>
    public int MaxInstances { get; init; } = DefaultMaxInstances;

    /// <summary>Time allowed per request, greater than zero and at most 1 hour; default 30 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>Path prefix the ingress routes to this deployment; starts with <c>/</c>; default <c>/&lt;name&gt;</c>.</summary>
    public required string Route { get; init; }

    /// <summary>Host name the route is restricted to (may be a <c>*.example.com</c> wildcard), or <see langword="null"/> for any host.</summary>
    public string? Host { get; init; }

    /// <summary>The <c>[runtime.resources]</c> sub-section.</summary>
    public ResourcesSection Resources { get; init; } = new();

    /// <summary>The <c>[runtime.scaling]</c> sub-section.</summary>
    public ScalingSection Scaling { get; init; } = new();

    /// <summary>The default <see cref="Route"/> for a package name: <c>/&lt;name&gt;</c>.</summary>
    /// <param name="packageName">The package name.</param>
    /// <returns>The default route.</returns>
    public static string DefaultRouteFor(string packageName)
    {
        ArgumentNullException.ThrowIfNull(packageName);
        return "/" + packageName;
    }
}
