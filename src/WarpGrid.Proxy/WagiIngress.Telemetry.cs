using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using WarpGrid.Core.Observability;

namespace WarpGrid.Proxy;

/// <summary>The ingress's metrics and traces: one server span and one duration measurement per request.</summary>
public sealed partial class WagiIngress
{
    private readonly WarpGridMetrics? _metrics;
    private readonly RequestSampler _sampler;

    private Task ObservedOrPlain(HttpContext context, IngressRoute route)
    {
        // Nobody listening: the plain path, no clock read, no span, no tags (one Enabled and one HasListeners check).
        var metrics = _metrics is { Enabled: true } m ? m : null;
        if (metrics is null && !WarpGridTelemetry.Source.HasListeners())
        {
            return ServeCoreAsync(context, route);
        }

        return ServeObservedAsync(context, route, metrics);
    }

    private async Task ServeObservedAsync(HttpContext context, IngressRoute route, WarpGridMetrics? metrics)
    {
        // The span starts here, inside this async method, so Activity.Current changes only in this request's flow.
        var start = metrics is null ? 0 : Stopwatch.GetTimestamp();
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
    /// Starts the request's server span through the node's <see cref="RequestSampler"/>: null, with no activity
    /// created, when the request is not sampled (see <see cref="RequestSampler.StartServerSpan"/> for the parent).
    /// </summary>
    private Activity? StartServerSpan(HttpContext context, IngressRoute route)
    {
        var request = context.Request;
        var headers = request.Headers;
        var traceparent = headers.TryGetValue("traceparent", out var parentValue) ? parentValue.ToString() : null;
        var tracestate = traceparent is not null && headers.TryGetValue("tracestate", out var stateValue) ? stateValue.ToString() : null;
        var name = HttpMethods.IsGet(request.Method) ? route.GetSpanName : request.Method + " " + route.Prefix;
        var activity = _sampler.StartServerSpan(name, traceparent, tracestate);
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
    private static bool TraceparentReplaced() => WarpGridTelemetry.IsRecordedSpan(Activity.Current);
}
