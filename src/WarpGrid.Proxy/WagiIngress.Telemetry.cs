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
        var decision = WarpGridTelemetry.Source.HasListeners() ? Decide(context.Request) : default;
        if (decision.Sampled)
        {
            return ServeTracedAsync(context, route, metrics, decision);
        }

        if (metrics is null)
        {
            return ServeCoreAsync(context, route);
        }

        // Measured, not traced (every request with tracing off, 9 in 10 with the default sampler): no span, and no
        // async wrapper of its own when the request completes synchronously, as a request on a warm instance does.
        var start = Stopwatch.GetTimestamp();
        var served = ServeCoreAsync(context, route);
        if (served.IsCompletedSuccessfully)
        {
            Record(context, route, metrics, start);
            return served;
        }

        return RecordWhenServedAsync(served, context, route, metrics, start);
    }

    private static async Task RecordWhenServedAsync(Task served, HttpContext context, IngressRoute route, WarpGridMetrics metrics, long start)
    {
        try
        {
            await served.ConfigureAwait(false);
        }
        finally
        {
            Record(context, route, metrics, start);
        }
    }

    private static void Record(HttpContext context, IngressRoute route, WarpGridMetrics metrics, long start)
    {
        var status = context.Response.StatusCode;
        metrics.RecordRequest(route.Deployment.Name, context.Request.Method, status, status >= 500 ? ErrorType(context.Response, status) : null, start);
    }

    /// <summary>The failure kind of a response: the ingress's <c>X-WarpGrid-Error</c> code, else <c>5xx</c> for a 5xx, else null.</summary>
    private static string? ErrorType(HttpResponse response, int status) =>
        status < 400 ? null
        : response.Headers.TryGetValue("X-WarpGrid-Error", out var code) && code.Count > 0 ? code[0]
        : status >= 500 ? "5xx" : null;

    private async Task ServeTracedAsync(HttpContext context, IngressRoute route, WarpGridMetrics? metrics, ServerSpanDecision decision)
    {
        // The span starts here, inside this async method, so Activity.Current changes only in this request's flow.
        var start = metrics is null ? 0 : Stopwatch.GetTimestamp();
        using var activity = StartServerSpan(context, route, decision);
        try
        {
            await ServeCoreAsync(context, route).ConfigureAwait(false);
        }
        finally
        {
            var response = context.Response;
            var status = response.StatusCode;
            var error = ErrorType(response, status);
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

            metrics?.RecordRequest(route.Deployment.Name, context.Request.Method, status, status >= 500 ? error : null, start);
        }
    }

    /// <summary>The node's <see cref="RequestSampler"/> decision for a request (its client <c>traceparent</c>, if any).</summary>
    private ServerSpanDecision Decide(HttpRequest request)
    {
        var headers = request.Headers;
        var traceparent = headers.TryGetValue("traceparent", out var parentValue) ? parentValue.ToString() : null;
        var tracestate = traceparent is not null && headers.TryGetValue("tracestate", out var stateValue) ? stateValue.ToString() : null;
        return _sampler.Decide(traceparent, tracestate);
    }

    /// <summary>
    /// Starts the server span of a request the <see cref="RequestSampler"/> sampled (see
    /// <see cref="RequestSampler.Decide"/> for the parent), with its HTTP attributes.
    /// </summary>
    private Activity? StartServerSpan(HttpContext context, IngressRoute route, in ServerSpanDecision decision)
    {
        var request = context.Request;
        var name = HttpMethods.IsGet(request.Method) ? route.GetSpanName : request.Method + " " + route.Prefix;
        var activity = _sampler.Start(name, decision);
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
