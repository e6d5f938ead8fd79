using System.Diagnostics;

namespace WarpGrid.Core.Observability;

/// <summary>
/// Head sampling of the ingress's server spans: decides whether a request is traced <em>before</em> any
/// <see cref="Activity"/> exists, so a request that is not sampled creates none (no span object, no ids, no
/// <see cref="Activity.Current"/> change). The rules are OpenTelemetry's <c>ParentBased(TraceIdRatioBased)</c>:
/// a request with a client <c>traceparent</c> follows the client's sampled flag; a new trace is sampled with
/// probability <see cref="Ratio"/>. An unsampled request keeps the client's trace context: the ingress passes its
/// <c>traceparent</c> and <c>tracestate</c> to the guest unchanged.
/// </summary>
/// <remarks>
/// The OpenTelemetry SDK's own samplers decide only once an activity is being created, and for a dropped root or a
/// dropped remote parent they still create one (<c>PropagationData</c>) to carry the trace id: one object and two
/// random ids per request that nobody records. The node's tracer provider keeps its ratio sampler for other sources
/// and lets a root that this class already sampled through (<see cref="IsStartingSampledRoot"/>), so the ratio is
/// applied once.
/// </remarks>
public sealed class RequestSampler
{
    [ThreadStatic]
    private static bool t_startingSampledRoot;

    /// <summary>Creates a sampler that records <paramref name="ratio"/> of new traces (0 to 1).</summary>
    public RequestSampler(double ratio)
    {
        if (double.IsNaN(ratio) || ratio is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "the sampling ratio must be between 0 and 1");
        }

        Ratio = ratio;
    }

    /// <summary>Records every new trace (the SDK's default, <c>ParentBased(AlwaysOn)</c>).</summary>
    public static RequestSampler AlwaysOn { get; } = new(1);

    /// <summary>The fraction of new traces (requests without a client <c>traceparent</c>) that are recorded.</summary>
    public double Ratio { get; }

    /// <summary>
    /// True on the calling thread while <see cref="StartServerSpan"/> starts a new trace it has sampled: the node's
    /// tracer provider records it without drawing again.
    /// </summary>
    public static bool IsStartingSampledRoot => t_startingSampledRoot;

    /// <summary>
    /// Starts the server span of one request, or returns null, creating no activity, when nobody listens or the
    /// request is not sampled: <see cref="Decide"/> then <see cref="Start"/>.
    /// </summary>
    /// <param name="name">The span name, e.g. <c>GET /hello</c>.</param>
    /// <param name="traceparent">The client's W3C <c>traceparent</c> header, or null.</param>
    /// <param name="tracestate">The client's <c>tracestate</c> header, or null.</param>
    public Activity? StartServerSpan(string name, string? traceparent, string? tracestate) => Start(name, Decide(traceparent, tracestate));

    /// <summary>
    /// Decides, without creating anything, whether a request gets a server span and under which parent. Lets the
    /// caller serve an unsampled request on its plain path and start the span (<see cref="Start"/>) only inside the
    /// async flow of a sampled one, so <see cref="Activity.Current"/> changes only there.
    /// </summary>
    /// <param name="traceparent">The client's W3C <c>traceparent</c> header, or null.</param>
    /// <param name="tracestate">The client's <c>tracestate</c> header, or null.</param>
    /// <remarks>
    /// Parent, in order: a recorded span of an instrumented host (an <see cref="ActivitySource"/> with a name, e.g.
    /// ASP.NET Core's instrumentation) is the parent and its decision stands; else a valid client
    /// <c>traceparent</c>; else a new trace. ASP.NET Core's own unexported activity (no source name, created when
    /// logging is on) is never the parent: a new trace is a root, not a child of an invisible span. The decision is
    /// valid until <see cref="Activity.Current"/> changes.
    /// </remarks>
    public ServerSpanDecision Decide(string? traceparent, string? tracestate)
    {
        if (!WarpGridTelemetry.Source.HasListeners())
        {
            return default;
        }

        var current = Activity.Current;
        if (current is not null && current.Source.Name.Length > 0)
        {
            // An instrumented host made the decision for this request: nest under its span, or follow its drop.
            return current.Recorded ? new ServerSpanDecision(ServerSpanDecision.Kind.Ambient, default) : default;
        }

        if (traceparent is not null && ActivityContext.TryParse(traceparent, tracestate, isRemote: true, out var parent))
        {
            return (parent.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? new ServerSpanDecision(ServerSpanDecision.Kind.Remote, parent) : default;
        }

        if (Ratio < 1 && (Ratio <= 0 || Random.Shared.NextDouble() >= Ratio))
        {
            return default;
        }

        return new ServerSpanDecision(ServerSpanDecision.Kind.NewRoot, default);
    }

    /// <summary>Starts the server span <paramref name="decision"/> asks for, or returns null (not sampled, or nobody listens any more).</summary>
    /// <param name="name">The span name, e.g. <c>GET /hello</c>.</param>
    /// <param name="decision">What <see cref="Decide"/> returned for this request.</param>
    public Activity? Start(string name, in ServerSpanDecision decision)
    {
        var source = WarpGridTelemetry.Source;
        switch (decision.Parent)
        {
            case ServerSpanDecision.Kind.Ambient:
                return source.StartActivity(name, ActivityKind.Server);
            case ServerSpanDecision.Kind.Remote:
                return source.StartActivity(name, ActivityKind.Server, decision.RemoteParent);
            case ServerSpanDecision.Kind.NewRoot:
                break;
            default:
                return null;
        }

        // A new trace: with an ambient activity current, StartActivity would take it as the parent.
        var current = Activity.Current;
        if (current is not null)
        {
            Activity.Current = null;
        }

        Activity? activity;
        t_startingSampledRoot = true;
        try
        {
            activity = source.StartActivity(name, ActivityKind.Server);
        }
        finally
        {
            t_startingSampledRoot = false;
        }

        if (activity is null && current is not null)
        {
            Activity.Current = current;
        }

        return activity;
    }
}

/// <summary>The head-sampling decision of one request (<see cref="RequestSampler.Decide"/>): no span (the default), or a span and its parent.</summary>
public readonly struct ServerSpanDecision
{
    internal ServerSpanDecision(Kind parent, ActivityContext remoteParent)
    {
        Parent = parent;
        RemoteParent = remoteParent;
    }

    /// <summary>Where a sampled request's server span hangs.</summary>
    internal enum Kind
    {
        /// <summary>Not sampled: no span.</summary>
        None,

        /// <summary>Under the instrumented host's recorded span (<see cref="Activity.Current"/>).</summary>
        Ambient,

        /// <summary>Under the client's sampled <c>traceparent</c>.</summary>
        Remote,

        /// <summary>A new trace the sampler picked.</summary>
        NewRoot,
    }

    /// <summary>True when the request gets a server span.</summary>
    public bool Sampled => Parent != Kind.None;

    internal Kind Parent { get; }

    internal ActivityContext RemoteParent { get; }
}
