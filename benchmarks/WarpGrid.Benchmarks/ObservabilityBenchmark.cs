using System.Diagnostics;
using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using OpenTelemetry;
using OpenTelemetry.Trace;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Benchmarks;

/// <summary>
/// Scale-from-zero and the cost of telemetry on the request path, in process.
/// <list type="bullet">
/// <item><c>warm</c>: one request on an idle instance (the baseline).</item>
/// <item><c>from zero</c>: release every idle instance (what scale-to-zero does), then one request: the pool creates
/// an instance from the in-memory compiled module and serves the held request (cold start + request).</item>
/// <item><c>Telemetry = All</c>: an OpenTelemetry tracer provider (no exporter) with the node's sampler at ratio 1
/// records every span of the <c>WarpGrid</c> source, and a meter listener collects every measurement of the
/// <c>WarpGrid</c> meter; each request then runs under a server span, creates the guest span, gets its own
/// <c>HTTP_TRACEPARENT</c> and records <c>http.server.request.duration</c>. <c>Sampled</c>: the same with the
/// node's default sampler, <c>ParentBased(TraceIdRatioBased(0.1))</c> (requests carry no client traceparent).
/// <c>Off</c>: nothing listens, the production default for traces.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class ObservabilityBenchmark
{
    private WasmNodeRuntime _runtime = null!;
    private InstancePool _pool = null!;
    private WagiRequest _request = null!;
    private WarpGridMetrics _metrics = null!;
    private TracerProvider? _tracer;
    private MeterListener? _meterListener;
    private long _measurements;

    /// <summary>Which telemetry listens.</summary>
    public enum TelemetryMode
    {
        /// <summary>Nothing listens.</summary>
        Off,

        /// <summary>Metrics, and tracing with the default sampler (10 % of new traces).</summary>
        Sampled,

        /// <summary>Metrics, and every request traced and recorded.</summary>
        All,
    }

    /// <summary>Which telemetry listens.</summary>
    [Params(TelemetryMode.Off, TelemetryMode.Sampled, TelemetryMode.All)]
    public TelemetryMode Telemetry { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 64L << 20 });
        var module = _runtime.Modules.LoadFile(RepoPaths.Combine("samples", "hello", "hello.wasm"));
        _pool = _runtime.CreatePool(new PoolSettings { Deployment = "hello", MinInstances = 0, MaxInstances = 4, MemoryLimitBytes = 16L << 20, RequestTimeout = TimeSpan.FromSeconds(5) }, module);
        _metrics = new WarpGridMetrics(new DeploymentRegistry(), _runtime);
        _request = new WagiRequest { Method = "GET", ScriptName = "/hello", PathInfo = string.Empty, FullUrl = "http://localhost/hello", MatchedRoute = "/hello/...", Headers = [new("Host", "localhost")] };
        if (Telemetry != TelemetryMode.Off)
        {
            _tracer = Sdk.CreateTracerProviderBuilder()
                .AddSource(WarpGridTelemetry.SourceName)
                .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(Telemetry == TelemetryMode.All ? 1.0 : 0.1)))
                .Build();
            _meterListener = new MeterListener { InstrumentPublished = (i, l) => { if (i.Meter.Name == WarpGridTelemetry.MeterName) { l.EnableMeasurementEvents(i); } } };
            _meterListener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref _measurements));
            _meterListener.Start();
        }

        if (Warm().GetAwaiter().GetResult() <= 0)
        {
            throw new InvalidOperationException("hello answered nothing");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tracer?.Dispose();
        _meterListener?.Dispose();
        _metrics.Dispose();
        _pool.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runtime.Dispose();
    }

    /// <summary>One request on a warm instance.</summary>
    [Benchmark(Baseline = true, Description = "warm request")]
    public ValueTask<int> Warm() => InvokeAsync();

    /// <summary>Scale to zero, then one request that wakes the deployment.</summary>
    [Benchmark(Description = "scale from zero → response")]
    public ValueTask<int> FromZero()
    {
        _pool.SetWarmTarget(0);
        return InvokeAsync();
    }

    private async ValueTask<int> InvokeAsync()
    {
        var start = Stopwatch.GetTimestamp();
        using var span = _tracer is null ? null : WarpGridTelemetry.Source.StartActivity("GET /hello", ActivityKind.Server, default(ActivityContext));
        using var result = await _pool.InvokeAsync(_request).ConfigureAwait(false);
        if (result.Fault is not null)
        {
            throw new InvalidOperationException(result.Fault.Message);
        }

        if (_metrics.Enabled)
        {
            _metrics.RecordRequest("hello", "GET", result.Response!.StatusCode, null, start);
        }

        return result.Response!.Body.Length;
    }
}
