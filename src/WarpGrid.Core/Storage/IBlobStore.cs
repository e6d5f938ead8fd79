namespace WarpGrid.Core.Storage;

/// <summary>
/// Content-addressed byte storage (for example WebAssembly modules). A blob is named by the digest of its bytes,
/// <c>sha256:&lt;64 lowercase hex digits&gt;</c> (see <see cref="Digest"/>); storing the same bytes twice stores them once.
/// </summary>
/// <remarks>Methods taking a digest throw <see cref="ArgumentException"/> naming the value when it is not in canonical form.</remarks>
public interface IBlobStore
{
    /// <summary>Stores <paramref name="bytes"/> durably and returns their digest.</summary>
    ValueTask<string> PutAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores everything read from <paramref name="content"/> durably and returns its digest.
    /// </summary>
    /// <param name="content">The bytes to store, read to the end.</param>
    /// <param name="maxBytes">When set, content longer than this is rejected with <see cref="BlobTooLargeException"/> and nothing is stored.</param>
    /// <param name="cancellationToken">Cancels the copy; nothing is stored.</param>
    ValueTask<string> PutAsync(Stream content, long? maxBytes = null, CancellationToken cancellationToken = default);

    /// <summary>True when a blob with this digest is stored.</summary>
    bool Exists(string digest);

    /// <summary>
    /// Reads a blob, verifying that its bytes still hash to <paramref name="digest"/>; null when it is not stored.
    /// </summary>
    /// <exception cref="BlobCorruptedException">The stored bytes do not match the digest.</exception>
    ValueTask<byte[]?> ReadAsync(string digest, CancellationToken cancellationToken = default);

    /// <summary>The file a blob with this digest is (or would be) stored at. Reading the file directly skips verification.</summary>
    string GetPath(string digest);

    /// <summary>Deletes a blob; false when it was not stored.</summary>
    ValueTask<bool> DeleteAsync(string digest, CancellationToken cancellationToken = default);

    /// <summary>The digests of all stored blobs, in no particular order.</summary>
    IEnumerable<string> List();
}
