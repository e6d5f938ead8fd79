namespace WarpGrid.Core.Storage;

/// <summary>One key in the cluster store, with the revisions that last created and modified it.</summary>
/// <param name="Key">The key, a '/'-separated path such as <c>deployments/hello</c>.</param>
/// <param name="Value">The value bytes (opaque to the store).</param>
/// <param name="ModRevision">The store revision of the write that produced this value.</param>
/// <param name="CreateRevision">The store revision at which the key was created.</param>
public sealed record StoreEntry(string Key, ReadOnlyMemory<byte> Value, long ModRevision, long CreateRevision);

/// <summary>What happened to a key, as seen by a watch.</summary>
public enum StoreEventKind
{
    /// <summary>The key was created or its value replaced.</summary>
    Put,

    /// <summary>The key was deleted.</summary>
    Delete,
}

/// <summary>A change observed by <see cref="IClusterStore.WatchAsync"/>.</summary>
/// <param name="Kind">Put or delete.</param>
/// <param name="Entry">For a put the new entry; for a delete the key with an empty value and the delete's revision.</param>
public sealed record StoreEvent(StoreEventKind Kind, StoreEntry Entry);

/// <summary>Thrown when a compare-and-set precondition does not hold.</summary>
public sealed class StoreConflictException : Exception
{
    public StoreConflictException(string key, long expectedRevision, long actualRevision)
        : base($"Conflict on '{key}': expected revision {expectedRevision}, found {actualRevision}.")
    {
        Key = key;
        ExpectedRevision = expectedRevision;
        ActualRevision = actualRevision;
    }

    public string Key { get; }

    public long ExpectedRevision { get; }

    /// <summary>The key's current mod revision, or 0 when it does not exist.</summary>
    public long ActualRevision { get; }
}

/// <summary>
/// The desired state of the cluster: a revisioned key-value store with compare-and-set and watches.
/// A single node uses the embedded, file-backed implementation; a cluster replicates it with Raft.
/// </summary>
public interface IClusterStore
{
    /// <summary>The revision of the newest write applied to this store (0 when empty).</summary>
    long Revision { get; }

    /// <summary>Reads one key, or null when it does not exist.</summary>
    ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Lists every key that starts with <paramref name="prefix"/>, in ordinal key order.</summary>
    ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes a key durably and returns the new store revision. With <paramref name="expectedModRevision"/> the write
    /// happens only when the key's current mod revision equals it (0 means "must not exist"); otherwise
    /// <see cref="StoreConflictException"/> is thrown and nothing is written.
    /// </summary>
    ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long? expectedModRevision = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes a key durably; false when it did not exist. Honours <paramref name="expectedModRevision"/> like <see cref="PutAsync"/>.</summary>
    ValueTask<bool> DeleteAsync(string key, long? expectedModRevision = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Streams every change to keys under <paramref name="prefix"/> with a revision greater than <paramref name="afterRevision"/>,
    /// first the retained history, then live changes, until cancelled.
    /// </summary>
    IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, long afterRevision, CancellationToken cancellationToken);
}
