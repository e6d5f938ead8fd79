namespace WarpGrid.Core.Storage;

/// <summary>
/// Thrown by <see cref="IClusterStore.WatchAsync"/> when the changes a watch asks for are no longer retained (the
/// watch started too far back, or it fell so far behind that its missed changes were dropped from the history).
/// The watcher should re-list the keys it cares about and watch again from the store's current revision.
/// </summary>
public sealed class StoreCompactedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="requestedRevision">The revision the watch asked to continue after.</param>
    /// <param name="oldestAvailableRevision">The oldest revision a watch can currently start after.</param>
    public StoreCompactedException(long requestedRevision, long oldestAvailableRevision)
        : base($"Cannot watch changes after revision {requestedRevision}: changes up to revision {oldestAvailableRevision} are no longer retained. " +
            "Re-list the keys and watch again from the store's current revision.")
    {
        RequestedRevision = requestedRevision;
        OldestAvailableRevision = oldestAvailableRevision;
    }

    /// <summary>The revision the watch asked to continue after.</summary>
    public long RequestedRevision { get; }

    /// <summary>
    /// The oldest revision a watch can currently start after: every change with a greater revision is still retained.
    /// </summary>
    public long OldestAvailableRevision { get; }
}

/// <summary>
/// Thrown when a store file is damaged in a way that cannot be explained by an interrupted write (for example a bad
/// checksum followed by valid records). The store refuses to open rather than drop acknowledged data.
/// </summary>
public sealed class StoreCorruptedException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The damaged file.</param>
    /// <param name="offset">The byte offset of the first damaged record.</param>
    /// <param name="reason">What is wrong at that offset.</param>
    public StoreCorruptedException(string path, long offset, string reason)
        : base($"The store file '{path}' is corrupt at offset {offset}: {reason}. " +
            "Refusing to open it so that acknowledged data is not silently dropped; restore the directory from a backup or repair the file.")
    {
        FilePath = path;
        Offset = offset;
        Reason = reason;
    }

    /// <summary>The damaged file.</summary>
    public string FilePath { get; }

    /// <summary>The byte offset of the first damaged record.</summary>
    public long Offset { get; }

    /// <summary>What is wrong at <see cref="Offset"/>.</summary>
    public string Reason { get; }
}

/// <summary>Thrown when a stored blob's bytes no longer hash to its digest.</summary>
public sealed class BlobCorruptedException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="digest">The digest the blob is stored under.</param>
    /// <param name="path">The blob's file.</param>
    /// <param name="actualDigest">The digest of the bytes actually found.</param>
    public BlobCorruptedException(string digest, string path, string actualDigest)
        : base($"Blob '{digest}' at '{path}' is corrupt: its content hashes to '{actualDigest}'. Delete it and store it again.")
    {
        Digest = digest;
        FilePath = path;
        ActualDigest = actualDigest;
    }

    /// <summary>The digest the blob is stored under.</summary>
    public string Digest { get; }

    /// <summary>The blob's file.</summary>
    public string FilePath { get; }

    /// <summary>The digest of the bytes actually found in the file.</summary>
    public string ActualDigest { get; }
}

/// <summary>Thrown when content written to a blob store exceeds the size limit given for it.</summary>
public sealed class BlobTooLargeException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="maxBytes">The limit that was exceeded.</param>
    public BlobTooLargeException(long maxBytes)
        : base($"The blob is larger than the limit of {maxBytes} bytes; nothing was stored.")
    {
        MaxBytes = maxBytes;
    }

    /// <summary>The limit that was exceeded.</summary>
    public long MaxBytes { get; }
}
