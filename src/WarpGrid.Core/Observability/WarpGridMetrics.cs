using System.Diagnostics;
using System.Diagnostics.Metrics;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Observability;

/// <summary>
/// The node's metrics on the <see cref="WarpGridTelemetry.MeterName"/> meter. The request path records only
/// <c>http.server.request.duration</c> and <c>warpgrid.request.errors</c> (and nothing when no listener is
/// attached); everything else is observed from pool and cache counters when a collector asks, so it costs the
/// request path nothing.
/// </summary>
/// <remarks>
/// Per deployment (tag <c>warpgrid.deployment</c>): <c>http.server.request.duration</c> (s, histogram, with
/// <c>http.request.method</c>, <c>http.response.status_code</c>, <c>error.type</c>), <c>warpgrid.request.errors</c>
/// (by <c>error.type</c>: trap, timeout, out_of_memory, 5xx, …), <c>warpgrid.instances</c> (by
/// <c>warpgrid.instance.state</c> idle/busy/unready), <c>warpgrid.queue.depth</c>, <c>warpgrid.invocations</c>,
/// <c>warpgrid.cold_starts</c>, <c>warpgrid.instance.replacements</c>, <c>warpgrid.requests.rejected</c>,
/// <c>warpgrid.memory.usage</c> (By), <c>warpgrid.autoscaler.desired_instances</c>. Per node:
/// <c>warpgrid.node.instances</c>, <c>warpgrid.node.instance.limit</c>, <c>warpgrid.module_cache.lookups</c> (by
/// <c>warpgrid.cache.result</c>), <c>warpgrid.store.revision</c>, <c>warpgrid.store.up</c>,
/// <c>warpgrid.deployments</c> (by <c>warpgrid.deployment.state</c>).
/// </remarks>
public sealed class WarpGridMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _errors;
    private readonly DeploymentRegistry _registry;
    private readonly WasmNodeRuntime _runtime;
    private readonly IClusterStore? _store;

    /// <summary>Creates the instruments for one node.</summary>
    public WarpGridMetrics(DeploymentRegistry registry, WasmNodeRuntime runtime, IClusterStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(runtime);
        _registry = registry;
        _runtime = runtime;
        _store = store;
        _meter = new Meter(WarpGridTelemetry.MeterName, typeof(WarpGridMetrics).Assembly.GetName().Version?.ToString(3));
        _duration = _meter.CreateHistogram<double>(
            "http.server.request.duration",
            unit: "s",
            description: "Duration of HTTP server requests served by deployments.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _errors = _meter.CreateCounter<long>("warpgrid.request.errors", unit: "{request}", description: "Requests that failed, by error.type (trap, timeout, out_of_memory, overloaded, 5xx, ...).");

        _meter.CreateObservableUpDownCounter("warpgrid.instances", ObserveInstances, unit: "{instance}", description: "Live instances of a deployment by state (idle, busy, unready).");
        _meter.CreateObservableUpDownCounter("warpgrid.queue.depth", () => PerPool(s => (long)s.Waiting), unit: "{request}", description: "Requests waiting for a free instance.");
        _meter.CreateObservableCounter("warpgrid.invocations", () => PerPool(s => s.Requests), unit: "{invocation}", description: "Guest invocations run by the current revision's pool.");
        _meter.CreateObservableCounter("warpgrid.guest.faults", () => PerPool(s => s.Faults), unit: "{invocation}", description: "Guest invocations that faulted (trap, timeout, out of memory, bad response, ...).");
        _meter.CreateObservableCounter("warpgrid.cold_starts", () => PerPool(s => s.ColdStarts), unit: "{instance}", description: "Instances created on demand for a waiting request.");
        _meter.CreateObservableCounter("warpgrid.instance.replacements", () => PerPool(s => s.Replaced), unit: "{instance}", description: "Instances discarded after a trap or failed liveness probe and replaced.");
        _meter.CreateObservableCounter("warpgrid.requests.rejected", () => PerPool(s => s.Rejected), unit: "{request}", description: "Requests shed with 503 because every instance was busy.");
        _meter.CreateObservableUpDownCounter("warpgrid.memory.usage", ObserveMemory, unit: "By", description: "Linear memory in use by a deployment's live instances (as of each instance's last request).");
        _meter.CreateObservableUpDownCounter("warpgrid.node.instances", () => (long)_runtime.Budget.Live, unit: "{instance}", description: "Live instances on this node.");
        _meter.CreateObservableUpDownCounter("warpgrid.node.instance.limit", () => (long)_runtime.Budget.Limit, unit: "{instance}", description: "Most live instances this node allows (WarpGrid:Runtime:MaxInstancesPerNode).");
        _meter.CreateObservableCounter("warpgrid.module_cache.lookups", ObserveCache, unit: "{lookup}", description: "Compiled-module cache lookups by result (memory_hit, disk_hit, compile, rejected_file).");
        _meter.CreateObservableUpDownCounter("warpgrid.deployments", ObserveDeployments, unit: "{deployment}", description: "Deployments on this node by state.");
        if (_store is not null)
        {
            _meter.CreateObservableCounter("warpgrid.store.revision", () => _store.Revision, unit: "{revision}", description: "The cluster store's current revision.");
            _meter.CreateObservableUpDownCounter("warpgrid.store.up", ObserveStoreUp, unit: "1", description: "1 when the cluster store answers, else 0.");
        }
    }

    /// <summary>True when someone collects request metrics (an exporter is attached).</summary>
    public bool Enabled => _duration.Enabled || _errors.Enabled;

    /// <summary>The meter, for extra instruments.</summary>
    public Meter Meter => _meter;

    /// <summary>Records one request served by a deployment.</summary>
    /// <param name="deployment">The deployment name.</param>
    /// <param name="method">The HTTP method.</param>
    /// <param name="status">The response status code.</param>
    /// <param name="errorType">The failure kind (e.g. trap, timeout, 5xx), or null for success.</param>
    /// <param name="startTimestamp">The <see cref="Stopwatch.GetTimestamp"/> at the request's start.</param>
    public void RecordRequest(string deployment, string method, int status, string? errorType, long startTimestamp)
    {
        var seconds = (Stopwatch.GetTimestamp() - startTimestamp) / (double)Stopwatch.Frequency;
        var tags = new TagList
        {
            { WarpGridTelemetry.DeploymentTag, deployment },
            { "http.request.method", method },
            { "http.response.status_code", WarpGridTelemetry.BoxedStatus(status) },
        };
        if (errorType is not null)
        {
            tags.Add("error.type", errorType);
            _errors.Add(1, new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, deployment), new KeyValuePair<string, object?>("error.type", errorType));
        }

        _duration.Record(seconds, tags);
    }

    private IEnumerable<Measurement<long>> PerPool(Func<Runtime.Pooling.PoolStats, long> value)
    {
        foreach (var active in _registry.Active.Values)
        {
            if (active.Pool is { } pool)
            {
                yield return new Measurement<long>(value(pool.Stats), new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, active.Name));
            }
            else if (active.Components is { } components)
            {
                yield return new Measurement<long>(value(components.Stats), new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, active.Name));
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveInstances()
    {
        foreach (var active in _registry.Active.Values)
        {
            if (active.Pool is not { } pool)
            {
                if (active.Components is { } components)
                {
                    // A component revision is in routing or out of it as a whole (its readiness probe): out of routing,
                    // its pre-instantiated instances get no traffic and are reported unready, as a WAGI pool's are.
                    var c = components.Stats;
                    var outOfRouting = components.UnreadyReason is not null;
                    var name = new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, active.Name);
                    yield return new Measurement<long>(outOfRouting ? 0 : c.Idle, name, new KeyValuePair<string, object?>("warpgrid.instance.state", "idle"));
                    yield return new Measurement<long>(c.Busy, name, new KeyValuePair<string, object?>("warpgrid.instance.state", "busy"));
                    yield return new Measurement<long>(outOfRouting ? c.Idle : 0, name, new KeyValuePair<string, object?>("warpgrid.instance.state", "unready"));
                }

                continue;
            }

            var stats = pool.Stats;
            var deployment = new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, active.Name);
            var unready = pool.UnreadyCount;
            yield return new Measurement<long>(stats.Idle, deployment, new KeyValuePair<string, object?>("warpgrid.instance.state", "idle"));
            yield return new Measurement<long>(stats.Busy, deployment, new KeyValuePair<string, object?>("warpgrid.instance.state", "busy"));
            yield return new Measurement<long>(unready, deployment, new KeyValuePair<string, object?>("warpgrid.instance.state", "unready"));
        }
    }

    private IEnumerable<Measurement<long>> ObserveMemory()
    {
        foreach (var active in _registry.Active.Values)
        {
            if (active.Pool is { } pool)
            {
                yield return new Measurement<long>(pool.MemoryInUseBytes, new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, active.Name));
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveCache()
    {
        var stats = _runtime.Modules.Stats;
        yield return new Measurement<long>(stats.MemoryHits, new KeyValuePair<string, object?>("warpgrid.cache.result", "memory_hit"));
        yield return new Measurement<long>(stats.DiskHits, new KeyValuePair<string, object?>("warpgrid.cache.result", "disk_hit"));
        yield return new Measurement<long>(stats.Compiles, new KeyValuePair<string, object?>("warpgrid.cache.result", "compile"));
        yield return new Measurement<long>(stats.RejectedFiles, new KeyValuePair<string, object?>("warpgrid.cache.result", "rejected_file"));
    }

    private IEnumerable<Measurement<long>> ObserveDeployments()
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var active in _registry.Active.Values)
        {
            var state = active.State.ToString().ToLowerInvariant();
            counts[state] = counts.GetValueOrDefault(state) + 1;
        }

        foreach (var (state, count) in counts)
        {
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("warpgrid.deployment.state", state));
        }
    }

    private long ObserveStoreUp()
    {
        try
        {
            _ = _store!.Revision;
            return 1;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            return 0;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
