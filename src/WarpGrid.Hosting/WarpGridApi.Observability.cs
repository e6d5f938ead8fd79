using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;

using WarpGrid.Hosting.Security;

namespace Microsoft.AspNetCore.Builder;

/// <summary>The observability endpoints: guest logs and the Prometheus scrape endpoint.</summary>
public static partial class WarpGridApplicationExtensions
{
    private static readonly JsonSerializerOptions LogJson = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>
    /// Maps the Prometheus scrape endpoint (OpenTelemetry Prometheus exporter) at <paramref name="path"/>, default
    /// <c>/metrics</c>: every instrument of the <c>WarpGrid</c> meter, in Prometheus text or OpenMetrics format.
    /// </summary>
    public static IEndpointConventionBuilder MapWarpGridMetrics(this IEndpointRouteBuilder endpoints, string path = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var scrape = endpoints.MapPrometheusScrapingEndpoint(path);
        if (endpoints.ServiceProvider.GetService<Microsoft.Extensions.Options.IOptions<WarpGridSecurityOptions>>()?.Value.AnonymousMetrics == true)
        {
            scrape.AllowAnonymous();
        }
        else
        {
            scrape.RequirePermission("get", "metrics", PermissionScope.Cluster);
        }

        return scrape;
    }

    private static void MapObservability(RouteGroupBuilder api)
    {
        api.MapGet("/deployments/{name}/logs", LogsAsync).RequirePermission("logs", "deployments", PermissionScope.Deployment);
    }

    /// <summary>
    /// <c>GET /deployments/{name}/logs?tail=100&amp;follow=false</c>: the newest records as NDJSON (one JSON object a
    /// line); with <c>follow=true</c> the response stays open and streams new records as they are written.
    /// </summary>
    private static async Task LogsAsync(string name, HttpContext context, DeploymentRegistry registry, WasmNodeRuntime runtime)
    {
        var query = context.Request.Query;
        var tail = 100;
        if (query.TryGetValue("tail", out var tailText) && (!int.TryParse(tailText, NumberStyles.None, CultureInfo.InvariantCulture, out tail) || tail > runtime.Logs.Capacity))
        {
            await Problem(400, "invalid_request", "Invalid request", $"tail: must be a whole number from 0 to {runtime.Logs.Capacity} (the records kept per deployment, WarpGrid:Runtime:LogRecordsPerDeployment), got '{tailText}'")
                .ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var follow = false;
        if (query.TryGetValue("follow", out var followText) && !bool.TryParse(followText, out follow))
        {
            await Problem(400, "invalid_request", "Invalid request", $"follow: must be true or false, got '{followText}'").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        if (registry.Get(name) is null)
        {
            await NotFound(name).ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var response = context.Response;
        response.ContentType = "application/x-ndjson; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        var cancellationToken = context.RequestAborted;
        if (!follow)
        {
            foreach (var record in runtime.Logs.Tail(name, tail))
            {
                await WriteRecordAsync(response, record, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        // Subscribe before the headers go: a client that sees the stream open and then makes the guest log must get
        // those records.
        using var follower = runtime.Logs.Follow(name, tail);
        try
        {
            await response.StartAsync(cancellationToken).ConfigureAwait(false);
            await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false); // the headers go now, not with the first record
            await foreach (var record in follower.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                await WriteRecordAsync(response, record, cancellationToken).ConfigureAwait(false);
                await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the client stopped following
        }
    }

    private static async Task WriteRecordAsync(HttpResponse response, GuestLogRecord record, CancellationToken cancellationToken)
    {
        await JsonSerializer.SerializeAsync(response.Body, record, LogJson, cancellationToken).ConfigureAwait(false);
        await response.Body.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
    }
}
