namespace WarpGrid.Core.Runtime.Pooling;

/// <summary>Where an instance goes after a health probe (<see cref="InstancePool.Probe"/>).</summary>
public enum ProbeVerdict
{
    /// <summary>Back in rotation: it gets traffic.</summary>
    Ready,

    /// <summary>Out of rotation: no traffic until a later probe says ready.</summary>
    Unready,

    /// <summary>Discarded: liveness failed.</summary>
    Replace,
}
