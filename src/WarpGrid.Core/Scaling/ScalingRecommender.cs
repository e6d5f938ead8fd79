using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Scaling;

/// <summary>
/// Turns metric samples into a desired instance count, the Kubernetes HPA way:
/// <c>raw = ceil(value / target)</c> clamped to [min, max]; scale up to the lowest raw value seen over
/// <c>scale_up_window</c> (zero: at once), scale down to the highest raw value seen over <c>scale_down_window</c>.
/// A WAGI instance serves one request at a time, so for <c>request_concurrency</c> the per-instance target is at most 1.
/// </summary>
public sealed class ScalingRecommender
{
    private readonly List<(DateTimeOffset At, int Raw)> _history = [];
    private readonly ScalingSection _policy;
    private readonly double _target;

    /// <summary>Creates a recommender that starts at <paramref name="initial"/> instances at <paramref name="now"/>.</summary>
    public ScalingRecommender(ScalingSection policy, int minInstances, int maxInstances, int initial, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        Min = minInstances;
        Max = Math.Max(minInstances, maxInstances);
        _target = policy.Metric == ScalingMetric.RequestConcurrency ? Math.Min(policy.TargetValue, 1) : policy.TargetValue;
        Desired = Math.Clamp(initial, Min, Max);
        _history.Add((now, Desired));
    }

    /// <summary>Lowest count.</summary>
    public int Min { get; }

    /// <summary>Highest count.</summary>
    public int Max { get; }

    /// <summary>The current decision.</summary>
    public int Desired { get; private set; }

    /// <summary>The last metric value seen.</summary>
    public double LastValue { get; private set; }

    /// <summary>When <see cref="Desired"/> last changed.</summary>
    public DateTimeOffset? LastChangeAt { get; private set; }

    /// <summary>Adds a sample of the deployment-wide metric and returns the desired count.</summary>
    public int Update(DateTimeOffset now, double value)
    {
        LastValue = value;
        var raw = value <= 0 || double.IsNaN(value) ? 0 : (int)Math.Min(Max, Math.Ceiling((value / _target) - 1e-9));
        raw = Math.Clamp(raw, Min, Max);
        _history.Add((now, raw));
        Prune(now);

        var next = Desired;
        if (raw > Desired)
        {
            next = Math.Max(Desired, Extreme(now, _policy.ScaleUpWindow, min: true));
        }
        else if (raw < Desired)
        {
            next = Math.Min(Desired, Extreme(now, _policy.ScaleDownWindow, min: false));
        }

        if (next != Desired)
        {
            Desired = next;
            LastChangeAt = now;
        }

        return Desired;
    }

    /// <summary>The lowest (or highest) raw value in force during the window ending now.</summary>
    private int Extreme(DateTimeOffset now, TimeSpan window, bool min)
    {
        var start = now - window;
        var result = _history[^1].Raw;
        for (var i = _history.Count - 1; i >= 0; i--)
        {
            var (at, raw) = _history[i];
            result = min ? Math.Min(result, raw) : Math.Max(result, raw);
            if (at <= start)
            {
                break; // the value in force when the window began
            }
        }

        return result;
    }

    private void Prune(DateTimeOffset now)
    {
        var start = now - (_policy.ScaleUpWindow > _policy.ScaleDownWindow ? _policy.ScaleUpWindow : _policy.ScaleDownWindow);
        var keepFrom = 0;
        for (var i = 0; i < _history.Count; i++)
        {
            if (_history[i].At <= start)
            {
                keepFrom = i; // the newest sample at or before the window start stays
            }
        }

        if (keepFrom > 0)
        {
            _history.RemoveRange(0, keepFrom);
        }
    }
}
