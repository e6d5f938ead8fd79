using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Proxy;

/// <summary>
/// The ingress: matches a request's host and path to a deployment and runs it in-process on the deployment's
/// instance pool (no socket, no copy beyond the body the guest reads), then writes the guest's CGI response.
/// </summary>
public sealed partial class WagiIngress
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer", "Content-Length",
    };

    private static readonly JsonSerializerOptions ProblemJson = new(JsonSerializerDefaults.Web)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly DeploymentRegistry _registry;
    private readonly WasmNodeRuntime _runtime;
    private readonly ILogger _logger;
    private RouteTable _table = RouteTable.Empty;

    /// <summary>Creates the ingress of a node.</summary>
    /// <param name="registry">The deployments this node serves.</param>
    /// <param name="runtime">The node's runtime.</param>
    /// <param name="logger">The ingress's logger.</param>
    /// <param name="metrics">Request metrics, or null for none.</param>
    /// <param name="sampler">Head sampling of server spans; null records every new trace (<see cref="RequestSampler.AlwaysOn"/>).</param>
    public WagiIngress(DeploymentRegistry registry, WasmNodeRuntime runtime, ILogger<WagiIngress> logger, WarpGridMetrics? metrics = null, RequestSampler? sampler = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(runtime);
        _registry = registry;
        _runtime = runtime;
        _logger = logger;
        _metrics = metrics;
        _sampler = sampler ?? RequestSampler.AlwaysOn;
    }

    /// <summary>The current route table (rebuilt lazily when deployments change).</summary>
    public RouteTable Routes
    {
        get
        {
            var table = Volatile.Read(ref _table);
            var version = _registry.Version;
            if (table.Version != version)
            {
                table = RouteTable.Build(_registry.Active.Values, version);
                Volatile.Write(ref _table, table);
            }

            return table;
        }
    }

    /// <summary>Finds the route of a request, or null.</summary>
    public IngressRoute? Match(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Routes.Match(context.Request.Host.Host.ToLowerInvariant(), context.Request.Path.Value ?? "/");
    }

    /// <summary>Serves a request: runs the matching deployment, or answers 404 naming the routes this node serves.</summary>
    public Task HandleAsync(HttpContext context)
    {
        var route = Match(context);
        return route is null ? NotFoundAsync(context) : ServeAsync(context, route);
    }

    /// <summary>Runs a request on the deployment of <paramref name="route"/>.</summary>
    public Task ServeAsync(HttpContext context, IngressRoute route)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(route);
        return ObservedOrPlain(context, route);
    }

    private async Task ServeCoreAsync(HttpContext context, IngressRoute route)
    {
        // Admit the request to the pool before reading the body. A pool being replaced by an update refuses new
        // requests but serves admitted ones; when this one lost that race, route it again to the new pool.
        if (route.Deployment.Components is not null || (route.Deployment.Pool is null && Match(context)?.Deployment.Components is not null))
        {
            await ServeComponentAsync(context, route).ConfigureAwait(false);
            return;
        }

        var pool = route.Deployment.Pool;
        if (pool is null || !pool.TryEnter())
        {
            route = Match(context) ?? route;
            pool = route.Deployment.Pool;
            if (pool is null || !pool.TryEnter())
            {
                await ProblemAsync(context, 503, "unavailable", "Deployment not running", $"deployment '{route.Deployment.Name}' has no running instances{(route.Deployment.Message is null ? string.Empty : ": " + route.Deployment.Message)}", route.Deployment.Name, null).ConfigureAwait(false);
                return;
            }
        }

        var entered = true;
        var limit = _runtime.Options.MaxRequestBodyBytes;
        var request = context.Request;
        byte[]? rented = null;
        var bodyLength = 0;
        try
        {
            if (request.ContentLength > limit)
            {
                await ProblemAsync(context, 413, "body_too_large", "Request body too large", $"the request body is {request.ContentLength} bytes; this node accepts at most {limit} bytes (WarpGrid:Runtime:MaxRequestBodyBytes)", route.Deployment.Name, null).ConfigureAwait(false);
                return;
            }

            if (request.ContentLength is > 0 || (request.ContentLength is null && (request.Headers.TransferEncoding.Count > 0 || HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method))))
            {
                var sizeFeature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
                if (sizeFeature is { IsReadOnly: false })
                {
                    sizeFeature.MaxRequestBodySize = limit;
                }

                (rented, bodyLength) = await ReadBodyAsync(request, limit, context.RequestAborted).ConfigureAwait(false);
                if (bodyLength < 0)
                {
                    await ProblemAsync(context, 413, "body_too_large", "Request body too large", $"the request body is larger than {limit} bytes, the most this node accepts (WarpGrid:Runtime:MaxRequestBodyBytes)", route.Deployment.Name, null).ConfigureAwait(false);
                    return;
                }
            }

            var wagi = BuildRequest(context, route, rented is null ? default : rented.AsMemory(0, bodyLength));
            entered = false; // InvokeEnteredAsync leaves the pool when the request is done
            using var result = await pool.InvokeEnteredAsync(wagi, context.RequestAborted).ConfigureAwait(false);
            if (result.Fault is { } fault)
            {
                await ProblemAsync(context, fault.HttpStatus, fault.Code, Title(fault.Outcome), fault.Message, route.Deployment.Name, result.InstanceId).ConfigureAwait(false);
                return;
            }

            var cgi = result.Response!;
            var response = context.Response;
            response.StatusCode = cgi.StatusCode;
            try
            {
                foreach (var (name, value) in cgi.Headers)
                {
                    if (!HopByHop.Contains(name))
                    {
                        response.Headers.Append(name, value);
                    }
                }
            }
            catch (InvalidOperationException ex)
            {
                // The CGI parser checked names and values; what is left is a header Kestrel cannot send as given
                // (e.g. a Content-Length that is not a number, or a server without Latin-1 header encoding).
                response.Clear();
                await ProblemAsync(context, 502, "bad_response", Title(InvocationOutcome.BadResponse), "the server refused the guest's response head: " + ex.Message, route.Deployment.Name, result.InstanceId).ConfigureAwait(false);
                return;
            }

            var body = cgi.Body;
            response.ContentLength = body.Length;
            if (body.Length > 0 && !HttpMethods.IsHead(request.Method))
            {
                await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == 413)
        {
            await ProblemAsync(context, 413, "body_too_large", "Request body too large", $"the request body is larger than {limit} bytes, the most this node accepts (WarpGrid:Runtime:MaxRequestBodyBytes)", route.Deployment.Name, null).ConfigureAwait(false);
        }
        finally
        {
            if (entered)
            {
                pool.Leave();
            }

            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static WagiRequest BuildRequest(HttpContext context, IngressRoute route, ReadOnlyMemory<byte> body)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        var pathInfo = route.Prefix == "/" ? path : path[route.Prefix.Length..];
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? path;
        var query = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var rawPath = query < 0 ? rawTarget : rawTarget[..query];
        var rawPathInfo = route.Prefix == "/" || rawPath.Length < route.Prefix.Length ? rawPath : rawPath[route.Prefix.Length..];

        var headers = new List<KeyValuePair<string, string>>(request.Headers.Count);
        var dropTraceparent = TraceparentReplaced();
        foreach (var (name, values) in request.Headers)
        {
            if (dropTraceparent && name.Equals("traceparent", StringComparison.OrdinalIgnoreCase))
            {
                continue; // the guest gets its own span as HTTP_TRACEPARENT
            }

            headers.Add(new KeyValuePair<string, string>(name, values.Count == 1 ? values[0]! : string.Join(", ", (IEnumerable<string?>)values)));
        }

        var host = request.Host;
        var port = host.Port ?? context.Connection.LocalPort;
        return new WagiRequest
        {
            Method = request.Method,
            ScriptName = route.Prefix == "/" ? string.Empty : route.Prefix,
            PathInfo = pathInfo,
            RawPathInfo = rawPathInfo,
            QueryString = request.QueryString.HasValue ? request.QueryString.Value![1..] : string.Empty,
            ServerName = host.Host,
            ServerPort = port,
            Protocol = request.Protocol,
            RemoteAddress = context.Connection.RemoteIpAddress?.ToString() ?? string.Empty,
            FullUrl = request.Scheme + "://" + host.Value + request.PathBase + path + request.QueryString,
            MatchedRoute = route.Pattern,
            Headers = headers,
            Body = body,
        };
    }

    private static async Task<(byte[]? Buffer, int Length)> ReadBodyAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        var initial = (int)Math.Min(request.ContentLength ?? 4096, limit) + 1;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initial, 256));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > limit)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return (null, -1);
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, limit + 1));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                length += read;
                if (length > limit)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return (null, -1);
                }
            }

            return (buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private async Task NotFoundAsync(HttpContext context)
    {
        var routes = Routes.Routes.Select(r => (r.Host ?? "*") + r.Prefix + " -> " + r.Deployment.Name).ToList();
        var detail = routes.Count == 0
            ? $"no deployment serves {context.Request.Host}{context.Request.Path}: this node has no deployments yet (deploy one with PUT /v1/deployments/<name>)"
            : $"no deployment serves {context.Request.Host}{context.Request.Path}; routes on this node: {string.Join(", ", routes)}";
        await ProblemAsync(context, 404, "no_route", "No deployment for this route", detail, null, null, routes).ConfigureAwait(false);
    }

    private static string Title(InvocationOutcome outcome) => outcome switch
    {
        InvocationOutcome.Timeout => "Guest timed out",
        InvocationOutcome.OutOfMemory => "Guest out of memory",
        InvocationOutcome.StackOverflow => "Guest stack overflow",
        InvocationOutcome.Trap => "Guest trapped",
        InvocationOutcome.Exit => "Guest exited with an error",
        InvocationOutcome.HostError => "Host call failed",
        InvocationOutcome.ResponseTooLarge => "Guest response too large",
        InvocationOutcome.BadResponse => "Guest response malformed",
        InvocationOutcome.Overloaded => "Deployment overloaded",
        _ => "Deployment unavailable",
    };

    private async Task ProblemAsync(HttpContext context, int status, string code, string title, string detail, string? deployment, string? instance, IReadOnlyList<string>? routes = null)
    {
        if (status >= 500)
        {
            Log.Problem(_logger, status, code, deployment ?? "-", detail);
        }

        var response = context.Response;
        if (response.HasStarted)
        {
            context.Abort();
            return;
        }

        response.StatusCode = status;
        response.ContentType = WarpGridProblem.ContentType;
        response.Headers["X-WarpGrid-Error"] = code;
        if (status == 503)
        {
            response.Headers.RetryAfter = new StringValues("1");
        }

        if (status == 413)
        {
            response.Headers.Connection = "close";
        }

        var problem = WarpGridProblem.Create(status, code, title, detail);
        if (deployment is not null)
        {
            problem["deployment"] = deployment;
        }

        if (instance is not null)
        {
            problem["instance"] = instance;
        }

        if (routes is not null)
        {
            problem["routes"] = routes;
        }

        await JsonSerializer.SerializeAsync(response.Body, problem, ProblemJson, cancellationToken: context.RequestAborted).ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 50, Level = LogLevel.Warning, Message = "Ingress answered {Status} ({Code}) for {Deployment}: {Detail}")]
        public static partial void Problem(ILogger logger, int status, string code, string deployment, string detail);
    }
}
