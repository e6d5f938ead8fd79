using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Proxy;

namespace WarpGrid.Benchmarks;

/// <summary>
/// Scale-from-zero and the cost of telemetry on the request path, in process, through the node's real ingress
/// (<see cref="WagiIngress.ServeAsync"/> with an in-memory <see cref="HttpContext"/>, no socket).
/// <list type="bullet">
/// <item><c>warm</c>: one request on an idle instance (the baseline).</item>
/// <item><c>from zero</c>: release every idle instance (what scale-to-zero does), then one request: the pool creates
/// an instance from the in-memory compiled module and serves the held request (cold start + request).</item>
/// <item><c>Telemetry = Off</c>: nothing listens (tracing off, metrics not collected). <c>Sampled</c>: what a node
/// with the defaults and tracing on runs: the OpenTelemetry SDK's meter provider aggregates the <c>WarpGrid</c>
/// meter (a reader with a discarding exporter stands in for the Prometheus scrape; <c>Metrics</c> is that alone), a tracer provider (no exporter)
/// listens to the <c>WarpGrid</c> source, and the ingress's <see cref="RequestSampler"/> samples 10 % of new traces
/// (requests carry no client traceparent). <c>All</c>: the same with every request sampled (server span, guest span,
/// the guest's own <c>HTTP_TRACEPARENT</c>).</item>
/// </list>
/// Every mode runs each request under an unexported activity like the one ASP.NET Core's hosting layer starts when
/// logging is on, so the server span's parent logic sees what it sees in warpd.
/// </summary>
[MemoryDiagnoser]
public class ObservabilityBenchmark
{
    private WasmNodeRuntime _runtime = null!;
    private InstancePool _pool = null!;
    private WarpGridMetrics _metrics = null!;
    private WagiIngress _ingress = null!;
    private IngressRoute _route = null!;
    private DefaultHttpContext _context = null!;
    private TracerProvider? _tracer;
    private MeterProvider? _meters;

    /// <summary>Which telemetry listens.</summary>
    public enum TelemetryMode
    {
        /// <summary>Nothing listens.</summary>
        Off,

        /// <summary>Metrics collected, no tracing.</summary>
        Metrics,

        /// <summary>Metrics collected, and tracing with the default sampler (10 % of new traces).</summary>
        Sampled,

        /// <summary>Metrics collected, and every request traced and recorded.</summary>
        All,
    }

    /// <summary>Which telemetry listens.</summary>
    [Params(TelemetryMode.Off, TelemetryMode.Metrics, TelemetryMode.Sampled, TelemetryMode.All)]
    public TelemetryMode Telemetry { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 64L << 20 });
        var module = _runtime.Modules.LoadFile(RepoPaths.Combine("samples", "hello", "hello.wasm"));
        _pool = _runtime.CreatePool(new PoolSettings { Deployment = "hello", MinInstances = 0, MaxInstances = 4, MemoryLimitBytes = 16L << 20, RequestTimeout = TimeSpan.FromSeconds(5) }, module);
        var registry = new DeploymentRegistry();
        _metrics = new WarpGridMetrics(registry, _runtime);
        var record = new DeploymentRecord { Name = "hello", Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:bench" };
        _route = new IngressRoute(null, "/hello", new ActiveDeployment(record, WarpManifest.CreateDefault("hello"), _pool, DeploymentState.Running, null, 1));
        var ratio = Telemetry == TelemetryMode.All ? 1.0 : 0.1;
        _ingress = new WagiIngress(registry, _runtime, NullLogger<WagiIngress>.Instance, _metrics, new RequestSampler(ratio));
        _context = new DefaultHttpContext();
        var request = _context.Request;
        request.Method = "GET";
        request.Scheme = "http";
        request.Host = new HostString("localhost");
        request.Path = "/hello";
        request.Headers.UserAgent = "wrk";
        _context.Response.Body = Stream.Null;
        if (Telemetry is TelemetryMode.Sampled or TelemetryMode.All)
        {
            // As the node configures it: parent-based, and a root the ingress sampled is recorded without a second draw.
            _tracer = Sdk.CreateTracerProviderBuilder()
                .AddSource(WarpGridTelemetry.SourceName)
                .SetSampler(new ParentBasedSampler(new AlwaysOnSampler()))
                .Build();
        }

        if (Telemetry != TelemetryMode.Off)
        {
            _meters = Sdk.CreateMeterProviderBuilder()
                .AddMeter(WarpGridTelemetry.MeterName)
                .AddReader(new BaseExportingMetricReader(new DiscardingExporter()))
                .Build();
        }

        if (Warm().GetAwaiter().GetResult() != 200)
        {
            throw new InvalidOperationException("hello did not answer 200");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tracer?.Dispose();
        _meters?.Dispose();
        _metrics.Dispose();
        _pool.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runtime.Dispose();
    }

    /// <summary>One request on a warm instance.</summary>
    [Benchmark(Baseline = true, Description = "warm request")]
    public Task<int> Warm() => ServeAsync();

    /// <summary>Scale to zero, then one request that wakes the deployment.</summary>
    [Benchmark(Description = "scale from zero → response")]
    public Task<int> FromZero()
    {
        _pool.SetWarmTarget(0);
        return ServeAsync();
    }

    private async Task<int> ServeAsync()
    {
        var response = _context.Response;
        response.Headers.Clear();
        response.StatusCode = 200;
        using var hosting = new Activity("Microsoft.AspNetCore.Hosting.HttpRequestIn").Start();
        await _ingress.ServeAsync(_context, _route).ConfigureAwait(false);
        return response.StatusCode;
    }

    private sealed class DiscardingExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }
}
