using System.Diagnostics;

namespace WarpGrid.Core.Observability;

/// <summary>
/// The names WarpGrid publishes its telemetry under: one <see cref="ActivitySource"/> (traces) and one meter name
/// (metrics). Subscribe with OpenTelemetry's <c>AddSource(WarpGridTelemetry.SourceName)</c> and
/// <c>AddMeter(WarpGridTelemetry.MeterName)</c>. Nothing is recorded for traces unless a listener is attached.
/// </summary>
public static class WarpGridTelemetry
{
    /// <summary>The activity source name: <c>WarpGrid</c>.</summary>
    public const string SourceName = "WarpGrid";

    /// <summary>The meter name: <c>WarpGrid</c>.</summary>
    public const string MeterName = "WarpGrid";

    /// <summary>Tag naming the deployment.</summary>
    public const string DeploymentTag = "warpgrid.deployment";

    /// <summary>Tag naming the deployment version.</summary>
    public const string VersionTag = "warpgrid.deployment.version";

    /// <summary>Tag naming the instance.</summary>
    public const string InstanceTag = "warpgrid.instance";

    /// <summary>The source of WarpGrid's spans (ingress request, guest invocation, health probe).</summary>
    public static readonly ActivitySource Source = new(SourceName, typeof(WarpGridTelemetry).Assembly.GetName().Version?.ToString(3));

    /// <summary>
    /// Starts the span of one guest invocation on an instance, or returns null (cheaply) when nobody listens or no
    /// request span is current.
    /// </summary>
    public static Activity? StartGuest(string deployment, string instance, bool coldStart)
    {
        if (!Source.HasListeners() || Activity.Current is null)
        {
            return null;
        }

        var activity = Source.StartActivity("guest " + deployment, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(DeploymentTag, deployment);
            activity.SetTag(InstanceTag, instance);
            activity.SetTag("warpgrid.cold_start", coldStart);
        }

        return activity;
    }
}
