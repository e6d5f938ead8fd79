namespace WarpGrid.Raft;

/// <summary>
/// Marks the package that will hold the Raft-replicated <c>IClusterStore</c>. A single node uses
/// <c>WarpGrid.Core.Storage.FileClusterStore</c> behind the same contract.
/// </summary>
public static class RaftStore
{
    /// <summary>True once the replicated store is available in this build.</summary>
    public const bool IsAvailable = false;
}
