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
    public static Activity? StartGuest(string deployment, string instance, bool coldStart) =>
        StartGuest(GuestSpanName(deployment), deployment, instance, coldStart);

    /// <summary>
    /// As <see cref="StartGuest(string, string, bool)"/> with the span name built once by the caller
    /// (<see cref="GuestSpanName"/>). Returns null when the request span is not recorded (not sampled): an unsampled
    /// request gets no guest span, and its guest sees the client's <c>traceparent</c> as with tracing off.
    /// </summary>
    public static Activity? StartGuest(string spanName, string deployment, string instance, bool coldStart)
    {
        if (!IsRecordedSpan(Activity.Current))
        {
            return null;
        }

        var activity = Source.StartActivity(spanName, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(DeploymentTag, deployment);
            activity.SetTag(InstanceTag, instance);
            activity.SetTag("warpgrid.cold_start", coldStart ? BoxedTrue : BoxedFalse);
        }

        return activity;
    }

    /// <summary>
    /// True when <paramref name="activity"/> is a recorded (sampled) span of <see cref="Source"/>, e.g. the ingress's
    /// server span of a sampled request. Another component's activity (ASP.NET Core's unexported one carries the
    /// client's sampled flag) is not: WarpGrid nests its spans and replaces the guest's <c>traceparent</c> only
    /// under its own recorded spans.
    /// </summary>
    public static bool IsRecordedSpan(Activity? activity) => activity is { Recorded: true } && ReferenceEquals(activity.Source, Source);

    /// <summary>
    /// The client's valid W3C <c>traceparent</c> and its <c>tracestate</c> among request headers, or nulls: what an
    /// unsampled request passes on unchanged.
    /// </summary>
    public static (string? TraceParent, string? TraceState) ClientTraceContext(IEnumerable<KeyValuePair<string, string>> headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        string? traceparent = null, tracestate = null;
        foreach (var (name, value) in headers)
        {
            if (name.Equals("traceparent", StringComparison.OrdinalIgnoreCase))
            {
                traceparent = value;
            }
            else if (name.Equals("tracestate", StringComparison.OrdinalIgnoreCase))
            {
                tracestate = value;
            }
        }

        return traceparent is not null && ActivityContext.TryParse(traceparent, tracestate, out _) ? (traceparent, tracestate) : (null, null);
    }

    /// <summary>The guest span name of a deployment: <c>guest &lt;deployment&gt;</c>.</summary>
    public static string GuestSpanName(string deployment) => "guest " + deployment;

    /// <summary>A status code as a cached boxed int (no allocation per request for 0..599).</summary>
    public static object BoxedStatus(int status) => (uint)status < (uint)StatusBoxes.Length ? StatusBoxes[status] : status;

    private static readonly object BoxedTrue = true;
    private static readonly object BoxedFalse = false;
    private static readonly object[] StatusBoxes = Enumerable.Range(0, 600).Select(i => (object)i).ToArray();
}
