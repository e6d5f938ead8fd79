using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;

namespace WarpGrid.Benchmarks;

/// <summary>
/// The parts of the telemetry work an unsampled but measured request does on the ingress, each alone, with the real
/// OpenTelemetry SDK listening as in a node with the defaults and tracing on (meter provider aggregating the
/// <c>WarpGrid</c> meter, tracer provider on the <c>WarpGrid</c> source, 10 % head sampling). Short operations are
/// far less disturbed by a loaded machine than a whole request: these figures say what the request path pays for
/// telemetry, to set against a request's own cost (<see cref="ObservabilityBenchmark"/> and
/// <c>scripts/bench-telemetry.sh</c>).
/// </summary>
[MemoryDiagnoser]
public class TelemetryPartsBenchmark
{
    private WasmNodeRuntime _runtime = null!;
    private WarpGridMetrics _metrics = null!;
    private RequestSampler _sampler = null!;
    private TracerProvider _tracer = null!;
    private MeterProvider _meters = null!;

    [GlobalSetup]
    public void Setup()
    {
        _runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 4 });
        _metrics = new WarpGridMetrics(new DeploymentRegistry(), _runtime);
        _sampler = new RequestSampler(0.1);
        _tracer = Sdk.CreateTracerProviderBuilder().AddSource(WarpGridTelemetry.SourceName).SetSampler(new ParentBasedSampler(new AlwaysOnSampler())).Build();
        _meters = Sdk.CreateMeterProviderBuilder().AddMeter(WarpGridTelemetry.MeterName).AddReader(new BaseExportingMetricReader(new DiscardingExporter())).Build();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tracer.Dispose();
        _meters.Dispose();
        _metrics.Dispose();
        _runtime.Dispose();
    }

    /// <summary>Two clock reads: the request's start and its duration.</summary>
    [Benchmark(Description = "2 x Stopwatch.GetTimestamp")]
    public long Clock() => Stopwatch.GetTimestamp() - Stopwatch.GetTimestamp();

    /// <summary>The head-sampling decision of a request without <c>traceparent</c> (a random draw; 9 in 10 not sampled).</summary>
    [Benchmark(Description = "sampler decision, no traceparent")]
    public bool Decide() => _sampler.Decide(null, null).Sampled;

    /// <summary>One <c>http.server.request.duration</c> measurement (deployment, method, status) into the SDK's histogram.</summary>
    [Benchmark(Description = "RecordRequest (histogram, 3 tags)")]
    public void Record() => _metrics.RecordRequest("hello", "GET", 200, null, Stopwatch.GetTimestamp());

    /// <summary>The same for a failed request: the histogram with error.type and the errors counter.</summary>
    [Benchmark(Description = "RecordRequest, 503 with error.type")]
    public void RecordError() => _metrics.RecordRequest("hello", "GET", 503, "overloaded", Stopwatch.GetTimestamp());

    private sealed class DiscardingExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }
}
