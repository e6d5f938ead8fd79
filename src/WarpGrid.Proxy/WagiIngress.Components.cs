using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using WarpGrid.Core.Runtime.Components;

namespace WarpGrid.Proxy;

/// <summary>The ingress path of <c>wasi:http/incoming-handler</c> components: the request streams in, the response streams out.</summary>
public sealed partial class WagiIngress
{
    private async Task ServeComponentAsync(HttpContext context, IngressRoute route)
    {
        var pool = route.Deployment.Components ?? Match(context)?.Deployment.Components;
        if (pool is null)
        {
            await ProblemAsync(context, 503, "unavailable", "Deployment not running", $"deployment '{route.Deployment.Name}' has no running instances", route.Deployment.Name, null).ConfigureAwait(false);
            return;
        }

        var limit = _runtime.Options.MaxRequestBodyBytes;
        var request = context.Request;
        if (request.ContentLength > limit)
        {
            await ProblemAsync(context, 413, "body_too_large", "Request body too large", $"the request body is {request.ContentLength} bytes; this node accepts at most {limit} bytes (WarpGrid:Runtime:MaxRequestBodyBytes)", route.Deployment.Name, null).ConfigureAwait(false);
            return;
        }

        // The guest runs synchronously on this thread and reads and writes the bodies as it goes.
        if (context.Features.Get<IHttpBodyControlFeature>() is { } bodyControl)
        {
            bodyControl.AllowSynchronousIO = true;
        }

        var exchange = new HttpContextExchange(context);
        ComponentInvocationResult result;
        try
        {
            result = await pool.InvokeAsync(exchange, context.RequestAborted).ConfigureAwait(false);
            if (result.Fault?.Outcome == Core.Runtime.Pooling.InvocationOutcome.Unavailable && !exchange.ResponseStarted && Match(context)?.Deployment.Components is { } newer && !ReferenceEquals(newer, pool))
            {
                result = await newer.InvokeAsync(exchange, context.RequestAborted).ConfigureAwait(false);
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == 413)
        {
            await ProblemAsync(context, 413, "body_too_large", "Request body too large", $"the request body is larger than {limit} bytes, the most this node accepts (WarpGrid:Runtime:MaxRequestBodyBytes)", route.Deployment.Name, null).ConfigureAwait(false);
            return;
        }

        if (result.Fault is { } fault)
        {
            if (!context.Response.HasStarted)
            {
                // The guest's head (e.g. its content-length) never went out: the problem response replaces it whole.
                context.Response.Clear();
            }

            // ProblemAsync aborts the connection when the head already went out: the client sees a truncated response.
            await ProblemAsync(context, fault.HttpStatus, fault.Code, Title(fault.Outcome), fault.Message, route.Deployment.Name, result.InstanceId).ConfigureAwait(false);
            return;
        }

        if (result.GuestError is { } guestError)
        {
            await ProblemAsync(context, 500, "guest_error", "The guest answered with an error", "the guest set the response to the wasi:http error " + guestError, route.Deployment.Name, result.InstanceId).ConfigureAwait(false);
            return;
        }

        await context.Response.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>The <see cref="IComponentHttpExchange"/> of an ASP.NET Core request.</summary>
    private sealed class HttpContextExchange(HttpContext context) : IComponentHttpExchange
    {
        private bool _noBody;

        public string Method => context.Request.Method;

        public string PathWithQuery => context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw && raw[0] == '/'
            ? raw
            : (context.Request.PathBase + context.Request.Path).ToString() + context.Request.QueryString;

        public string Scheme => context.Request.Scheme;

        public string? Authority => context.Request.Host.HasValue ? context.Request.Host.Value : null;

        public IEnumerable<KeyValuePair<string, string>> RequestHeaders => OnePerValue(context.Request.Headers);

        public Stream RequestBody => context.Request.Body;

        /// <summary>Kestrel fills them once the body was read to its end (HTTP/1.1 chunked, HTTP/2).</summary>
        public IEnumerable<KeyValuePair<string, string>> RequestTrailers =>
            context.Features.Get<IHttpRequestTrailersFeature>() is { Available: true } feature ? OnePerValue(feature.Trailers) : [];

        public bool ResponseStarted { get; private set; }

        /// <summary>Header or trailer fields as one entry per value.</summary>
        private static IEnumerable<KeyValuePair<string, string>> OnePerValue(IHeaderDictionary fields)
        {
            foreach (var (name, values) in fields)
            {
                foreach (var value in values)
                {
                    if (value is not null)
                    {
                        yield return new(name, value);
                    }
                }
            }
        }

        public void StartResponse(int status, IReadOnlyList<KeyValuePair<string, string>> headers)
        {
            var response = context.Response;
            response.StatusCode = status;
            try
            {
                foreach (var (name, value) in headers)
                {
                    if (!HopByHop.Contains(name))
                    {
                        response.Headers.Append(name, value);
                    }
                }
            }
            catch (InvalidOperationException)
            {
                // Kestrel refused a header (e.g. a content-length that is not a number): leave nothing of the guest's
                // head behind for the problem response.
                response.Clear();
                throw;
            }

            _noBody = HttpMethods.IsHead(context.Request.Method) || status is 204 or 205 or 304;
            ResponseStarted = true;
        }

        /// <summary>HEAD, 204, 205 and 304 responses have no body: what the guest writes is dropped (Kestrel refuses it).</summary>
        public void WriteResponseBody(ReadOnlySpan<byte> bytes)
        {
            if (!_noBody)
            {
                context.Response.Body.Write(bytes);
            }
        }

        public void FlushResponseBody() => context.Response.Body.Flush();
    }
}
