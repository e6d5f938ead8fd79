using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime.Pooling;

namespace WarpGrid.Core.Scaling;

/// <summary>What a metric source sees when the autoscaler samples a deployment.</summary>
/// <param name="Deployment">The deployment name.</param>
/// <param name="Policy">Its <c>[runtime.scaling]</c> section.</param>
/// <param name="Pool">Its pool: a WAGI <see cref="InstancePool"/> or a <c>wasi:http</c> <see cref="Runtime.Components.ComponentHttpPool"/>.</param>
/// <param name="MeanConcurrency">Requests in flight on average since the last sample (busy instance time over wall time, at least what is busy or waiting now).</param>
/// <param name="Interval">Time since the last sample.</param>
public sealed record ScalingContext(string Deployment, ScalingSection Policy, ISupervisedPool Pool, double MeanConcurrency, TimeSpan Interval);

/// <summary>
/// A metric the autoscaler can scale on, chosen by <c>runtime.scaling.metric</c> (<c>request_concurrency</c>,
/// <c>cpu</c>) or, for <c>metric = "custom"</c>, by <c>custom_metric</c> matching <see cref="Name"/>. Register one
/// with <c>AddScalingMetricSource&lt;T&gt;()</c>.
/// </summary>
public interface IScalingMetricSource
{
    /// <summary>The name the manifest refers to.</summary>
    string Name { get; }

    /// <summary>
    /// The deployment-wide value of the metric now (the autoscaler divides it by <c>target_value</c>), or null when
    /// there is no sample (the decision is kept).
    /// </summary>
    ValueTask<double?> SampleAsync(ScalingContext context, CancellationToken cancellationToken);
}

/// <summary><c>request_concurrency</c>: requests in flight, averaged over the sampling interval.</summary>
public sealed class RequestConcurrencyMetricSource : IScalingMetricSource
{
    /// <inheritdoc />
    public string Name => "request_concurrency";

    /// <inheritdoc />
    public ValueTask<double?> SampleAsync(ScalingContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new(context.MeanConcurrency);
    }
}

/// <summary>
/// <c>cpu</c>: guest CPU use in percent of one core, summed over instances. A WAGI guest runs on the request thread
/// from start to end without blocking, so its CPU time is its busy time: 100 × mean busy instances.
/// <c>target_value</c> is then percent per instance (e.g. 70).
/// </summary>
public sealed class CpuMetricSource : IScalingMetricSource
{
    /// <inheritdoc />
    public string Name => "cpu";

    /// <inheritdoc />
    public ValueTask<double?> SampleAsync(ScalingContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new(context.MeanConcurrency * 100);
    }
}
