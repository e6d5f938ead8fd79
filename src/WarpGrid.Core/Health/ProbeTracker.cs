using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime.Pooling;

namespace WarpGrid.Core.Health;

/// <summary>
/// The probe history of one instance and the rule that turns it into a verdict. Readiness: one failed readiness
/// probe takes the instance out of rotation; <c>healthy_threshold</c> successes in a row put it back. Liveness:
/// <c>unhealthy_threshold</c> failed liveness probes in a row discard it (it is replaced).
/// </summary>
public sealed class ProbeTracker
{
    /// <summary>Failed liveness probes in a row.</summary>
    public int LivenessFailures { get; private set; }

    /// <summary>Passed readiness probes in a row.</summary>
    public int ReadinessSuccesses { get; private set; }

    /// <summary>Whether the instance is in rotation.</summary>
    public bool Ready { get; private set; } = true;

    /// <summary>Creates a tracker; a replacement starts unready (it must pass a probe before it gets traffic).</summary>
    public ProbeTracker(bool ready = true) => Ready = ready;

    /// <summary>Records a liveness probe alone (when readiness has its own endpoint) and returns where the instance goes.</summary>
    public ProbeVerdict RecordLiveness(HealthSection health, bool passed)
    {
        ArgumentNullException.ThrowIfNull(health);
        LivenessFailures = passed ? 0 : LivenessFailures + 1;
        if (LivenessFailures >= health.UnhealthyThreshold)
        {
            Ready = false;
            return ProbeVerdict.Replace;
        }

        return Ready ? ProbeVerdict.Ready : ProbeVerdict.Unready;
    }

    /// <summary>Records a readiness probe alone (when readiness has its own endpoint).</summary>
    public ProbeVerdict RecordReadiness(HealthSection health, bool passed)
    {
        ArgumentNullException.ThrowIfNull(health);
        if (!passed)
        {
            ReadinessSuccesses = 0;
            Ready = false;
        }
        else if (++ReadinessSuccesses >= health.HealthyThreshold)
        {
            Ready = true;
        }

        return Ready ? ProbeVerdict.Ready : ProbeVerdict.Unready;
    }

    /// <summary>Records one probe of an endpoint that serves as both liveness and readiness, and returns where the instance goes.</summary>
    public ProbeVerdict Record(HealthSection health, bool passed) => Record(health, passed, passed);

    /// <summary>Records one probe round and returns where the instance goes.</summary>
    public ProbeVerdict Record(HealthSection health, bool livenessPassed, bool readinessPassed)
    {
        ArgumentNullException.ThrowIfNull(health);
        LivenessFailures = livenessPassed ? 0 : LivenessFailures + 1;
        if (LivenessFailures >= health.UnhealthyThreshold)
        {
            Ready = false;
            return ProbeVerdict.Replace;
        }

        if (!readinessPassed)
        {
            ReadinessSuccesses = 0;
            Ready = false;
        }
        else
        {
            ReadinessSuccesses++;
            if (!Ready && ReadinessSuccesses >= health.HealthyThreshold)
            {
                Ready = true;
            }
        }

        return Ready ? ProbeVerdict.Ready : ProbeVerdict.Unready;
    }
}
