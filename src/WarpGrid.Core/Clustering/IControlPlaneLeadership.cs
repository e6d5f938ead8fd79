namespace WarpGrid.Core.Clustering;

/// <summary>
/// Whether this process is the control-plane member that runs the cluster controllers (scheduling, node health). With
/// one control-plane process it always is; with a Raft-replicated store it is the Raft leader.
/// </summary>
public interface IControlPlaneLeadership
{
    /// <summary>Whether this member leads now.</summary>
    bool IsLeader { get; }

    /// <summary>Raised (on any thread) whenever leadership may have moved.</summary>
    event Action? Changed;
}

/// <summary>The leadership of a single control-plane process: always the leader.</summary>
public sealed class SingleControlPlaneLeadership : IControlPlaneLeadership
{
    /// <summary>The shared instance.</summary>
    public static SingleControlPlaneLeadership Instance { get; } = new();

    /// <inheritdoc />
    public bool IsLeader => true;

    /// <inheritdoc />
    public event Action? Changed
    {
        add { }
        remove { }
    }
}
