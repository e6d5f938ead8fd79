namespace WarpGrid.Core.Storage;

/// <summary>Tuning knobs of <see cref="FileClusterStore"/>. The defaults suit a single node; none needs changing.</summary>
public sealed class FileClusterStoreOptions
{
    /// <summary>
    /// The log is compacted into a snapshot once it is at least this large (and at least
    /// <see cref="CompactionLiveDataFactor"/> times the live data). Default 64 MiB.
    /// </summary>
    public long CompactionThresholdBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// The log is only compacted once it is at least this many times the size of the live data, so that a large store
    /// is not rewritten over and over. Default 4.
    /// </summary>
    public int CompactionLiveDataFactor { get; init; } = 4;

    /// <summary>How many recent changes are kept in memory for watches that start in the past. Default 10,000.</summary>
    public int WatchHistoryCapacity { get; init; } = 10_000;

    /// <summary>An upper bound on the bytes (keys and values) of the retained watch history. Default 64 MiB.</summary>
    public long WatchHistoryMaxBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// How many changes may be queued for one watcher that is not reading. A watcher that overflows its buffer is
    /// detached (writers never wait for it) and later catches up from the history, or ends with
    /// <see cref="StoreCompactedException"/> when the history no longer reaches back far enough. Default 1,024.
    /// </summary>
    public int WatchBufferCapacity { get; init; } = 1024;

    internal void Validate()
    {
        if (CompactionThresholdBytes < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactionThresholdBytes), CompactionThresholdBytes, $"{nameof(FileClusterStoreOptions)}.{nameof(CompactionThresholdBytes)} must be at least 4096 bytes.");
        }

        if (CompactionLiveDataFactor < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactionLiveDataFactor), CompactionLiveDataFactor, $"{nameof(FileClusterStoreOptions)}.{nameof(CompactionLiveDataFactor)} must be at least 1.");
        }

        if (WatchHistoryCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(WatchHistoryCapacity), WatchHistoryCapacity, $"{nameof(FileClusterStoreOptions)}.{nameof(WatchHistoryCapacity)} must be at least 1.");
        }

        if (WatchHistoryMaxBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(WatchHistoryMaxBytes), WatchHistoryMaxBytes, $"{nameof(FileClusterStoreOptions)}.{nameof(WatchHistoryMaxBytes)} must be at least 1.");
        }

        if (WatchBufferCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(WatchBufferCapacity), WatchBufferCapacity, $"{nameof(FileClusterStoreOptions)}.{nameof(WatchBufferCapacity)} must be at least 1.");
        }
    }
}
