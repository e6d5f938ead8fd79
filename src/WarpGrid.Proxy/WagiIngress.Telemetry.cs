using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using WarpGrid.Core.Observability;

namespace WarpGrid.Proxy;

/// <summary>The ingress's metrics and traces: one server span and one duration measurement per request.</summary>
public sealed partial class WagiIngress
{
    private readonly WarpGridMetrics? _metrics;

    private Task ObservedOrPlain(HttpContext context, IngressRoute route)
    {
        // Nobody listening: the plain path, no clock read, no span, no tags.
        var metrics = _metrics is { Enabled: true } m ? m : null;
        if (metrics is null && !WarpGridTelemetry.Source.HasListeners())
        {
            return ServeCoreAsync(context, route);
        }

        return ServeObservedAsync(context, route, metrics);
    }

    private async Task ServeObservedAsync(HttpContext context, IngressRoute route, WarpGridMetrics? metrics)
    {
        var start = Stopwatch.GetTimestamp();
        using var activity = StartServerSpan(context, route);
        try
        {
            await ServeCoreAsync(context, route).ConfigureAwait(false);
        }
        finally
        {
            var response = context.Response;
            var status = response.StatusCode;
            string? error = response.Headers.TryGetValue("X-WarpGrid-Error", out var code) && code.Count > 0 ? code[0] : status >= 500 ? "5xx" : null;
            if (activity is not null)
            {
                if (activity.IsAllDataRequested)
                {
                    activity.SetTag("http.response.status_code", WarpGridTelemetry.BoxedStatus(status));
                }

                if (error is not null && activity.IsAllDataRequested)
                {
                    activity.SetTag("error.type", error);
                }

                if (status >= 500)
                {
                    activity.SetStatus(ActivityStatusCode.Error, error);
                }
            }

            metrics?.RecordRequest(route.Deployment.Name, context.Request.Method, status, status >= 500 ? error ?? "5xx" : null, start);
        }
    }

    /// <summary>
    /// Starts the request's server span: a child of the current activity (ASP.NET Core's, when its instrumentation is
    /// on), else of the client's W3C <c>traceparent</c>/<c>tracestate</c>, else a new trace.
    /// </summary>
    private static Activity? StartServerSpan(HttpContext context, IngressRoute route)
    {
        if (!WarpGridTelemetry.Source.HasListeners())
        {
            return null;
        }

        var request = context.Request;
        var name = HttpMethods.IsGet(request.Method) ? route.GetSpanName : request.Method + " " + route.Prefix;
        Activity? activity;
        if (Activity.Current is { Recorded: true, IsAllDataRequested: true } current && current.Source.Name.Length > 0)
        {
            // An ActivitySource-based host span that is being recorded (e.g. an instrumented host): nest under it.
            // ASP.NET Core's own unexported "legacy" activity has no source name and is skipped, so the exported
            // server span's parent is the client's span from traceparent, not an invisible one.
            activity = WarpGridTelemetry.Source.StartActivity(name, ActivityKind.Server);
        }
        else if (request.Headers.TryGetValue("traceparent", out var traceparent)
            && ActivityContext.TryParse(traceparent.ToString(), request.Headers.TryGetValue("tracestate", out var state) ? state.ToString() : null, isRemote: true, out var parent))
        {
            activity = WarpGridTelemetry.Source.StartActivity(name, ActivityKind.Server, parent);
        }
        else
        {
            // A new trace; ignore an unrecorded ambient activity so the root is ours.
            activity = WarpGridTelemetry.Source.StartActivity(name, ActivityKind.Server, default(ActivityContext));
        }

        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("http.request.method", request.Method);
            activity.SetTag("url.path", request.Path.Value);
            activity.SetTag("url.scheme", request.Scheme);
            activity.SetTag("http.route", route.Pattern);
            activity.SetTag(WarpGridTelemetry.DeploymentTag, route.Deployment.Name);
            activity.SetTag(WarpGridTelemetry.VersionTag, route.Deployment.Record.Version);
        }

        return activity;
    }

    /// <summary>
    /// True when the guest gets the span of its own invocation as <c>HTTP_TRACEPARENT</c> instead of the client's
    /// header: the request is traced and sampled (an unsampled request gets no guest span, see <see cref="WarpGridTelemetry.StartGuest(string, string, string, bool)"/>).
    /// </summary>
    private static bool TraceparentReplaced() => Activity.Current is { Recorded: true } && WarpGridTelemetry.Source.HasListeners();
}
