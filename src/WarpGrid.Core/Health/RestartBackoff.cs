namespace WarpGrid.Core.Health;

/// <summary>
/// Exponential back-off of a deployment's instance replacements (Kubernetes' CrashLoopBackOff): the first
/// replacement is immediate, each further one in a row waits twice as long as the one before, from
/// <see cref="Initial"/> up to <see cref="Max"/>. A deployment that went <see cref="StablePeriod"/> without a
/// replacement starts again from zero.
/// </summary>
public sealed class RestartBackoff(TimeSpan initial, TimeSpan max, TimeSpan stablePeriod)
{
    /// <summary>Delay before the second replacement in a row.</summary>
    public TimeSpan Initial { get; } = initial;

    /// <summary>Longest delay.</summary>
    public TimeSpan Max { get; } = max;

    /// <summary>Time without a replacement after which the back-off resets.</summary>
    public TimeSpan StablePeriod { get; } = stablePeriod;

    /// <summary>Replacements in a row (since the last stable period).</summary>
    public int Consecutive { get; private set; }

    /// <summary>All replacements of this deployment on this node.</summary>
    public long Total { get; private set; }

    /// <summary>When the last replacement happened.</summary>
    public DateTimeOffset? LastRestartAt { get; private set; }

    /// <summary>Why the last instance was replaced.</summary>
    public string? LastError { get; private set; }

    /// <summary>When the next replacement may be created; null when not waiting.</summary>
    public DateTimeOffset? NextRetryAt { get; private set; }

    /// <summary>True while a replacement waits for its back-off to end.</summary>
    public bool InBackoff(DateTimeOffset now) => NextRetryAt is { } next && now < next;

    /// <summary>Records a replacement and returns how long to wait before creating the new instance.</summary>
    public TimeSpan RecordRestart(DateTimeOffset now, string error)
    {
        ObserveStable(now);
        Consecutive++;
        Total++;
        LastRestartAt = now;
        LastError = error;
        var delay = Consecutive <= 1 ? TimeSpan.Zero : Delay(Consecutive - 2);
        NextRetryAt = delay > TimeSpan.Zero ? now + delay : null;
        return delay;
    }

    /// <summary>Ends a wait that is over; resets the count after a stable period. Call on every tick.</summary>
    public void ObserveStable(DateTimeOffset now)
    {
        if (NextRetryAt is { } next && now >= next)
        {
            NextRetryAt = null;
        }

        if (LastRestartAt is { } last && now - last >= StablePeriod && NextRetryAt is null)
        {
            Consecutive = 0;
        }
    }

    private TimeSpan Delay(int doublings)
    {
        var ticks = Initial.Ticks;
        for (var i = 0; i < doublings && ticks < Max.Ticks; i++)
        {
            ticks *= 2;
        }

        return TimeSpan.FromTicks(Math.Min(ticks, Max.Ticks));
    }
}
