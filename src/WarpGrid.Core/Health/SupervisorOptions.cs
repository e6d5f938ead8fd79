namespace WarpGrid.Core.Health;

/// <summary>Settings of the health prober and autoscaler, bound from <c>WarpGrid:Supervisor</c>.</summary>
public sealed class SupervisorOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Supervisor";

    /// <summary>How often the supervisor wakes to run due probes and restarts. Default 100 ms.</summary>
    public TimeSpan Tick { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often the autoscaler samples each deployment's metric. Default 1 s.</summary>
    public TimeSpan ScalingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Delay before the second replacement in a row; doubles per further one. Default 1 s.</summary>
    public TimeSpan RestartBackoffInitial { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between replacements. Default 5 minutes.</summary>
    public TimeSpan RestartBackoffMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Time without a replacement after which the back-off resets. Default 60 s.</summary>
    public TimeSpan StablePeriod { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Requests of a <c>wasi:http</c> component deployment that fail in a row (a trap, an exit, a bad response, an
    /// instance that cannot be created; not overload) before the node counts a restart and backs off. Default 5.
    /// </summary>
    public int CrashLoopFaults { get; set; } = 5;

    /// <summary>Returns every problem with these settings, each naming the setting.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Range(string name, TimeSpan value, TimeSpan min, TimeSpan max)
        {
            if (value < min || value > max)
            {
                errors.Add($"{Section}:{name} must be between {min} and {max} (got {value}).");
            }
        }

        Range(nameof(Tick), Tick, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(10));
        Range(nameof(ScalingInterval), ScalingInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        Range(nameof(RestartBackoffInitial), RestartBackoffInitial, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1));
        Range(nameof(RestartBackoffMax), RestartBackoffMax, RestartBackoffInitial, TimeSpan.FromHours(24));
        Range(nameof(StablePeriod), StablePeriod, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(24));
        if (CrashLoopFaults is < 1 or > 10_000)
        {
            errors.Add($"{Section}:{nameof(CrashLoopFaults)} must be between 1 and 10000 (got {CrashLoopFaults}).");
        }

        return errors;
    }
}
