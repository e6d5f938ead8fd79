using OpenTelemetry.Trace;
using WarpGrid.Core.Observability;

namespace WarpGrid.Hosting;

/// <summary>
/// The root sampler of the node's tracer provider (under <see cref="ParentBasedSampler"/>): a new trace that the
/// ingress's <see cref="RequestSampler"/> has already sampled is recorded as is; any other root (another source's,
/// e.g. an instrumentation the host added) is sampled by trace id with the same ratio, as
/// <c>TraceIdRatioBased</c> does. The ratio is thus applied once to every new trace.
/// </summary>
internal sealed class HeadSampledRootSampler : Sampler
{
    private static readonly SamplingResult Sampled = new(SamplingDecision.RecordAndSample);
    private readonly TraceIdRatioBasedSampler _ratio;

    public HeadSampledRootSampler(double ratio)
    {
        _ratio = new TraceIdRatioBasedSampler(ratio);
        Description = "WarpGridHeadSampledRoot{" + ratio.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}";
    }

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters) =>
        RequestSampler.IsStartingSampledRoot ? Sampled : _ratio.ShouldSample(samplingParameters);
}
