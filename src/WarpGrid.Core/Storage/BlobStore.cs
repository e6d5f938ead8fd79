using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace WarpGrid.Core.Storage;

/// <summary>
/// An <see cref="IBlobStore"/> on the local file system. A blob with digest <c>sha256:&lt;hex&gt;</c> lives at
/// <c>&lt;root&gt;/blobs/sha256/&lt;first two hex digits&gt;/&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// Content is written to a temporary file under <c>&lt;root&gt;/blobs/tmp</c> (same file system), fsynced, and renamed
/// into place, and the directory is fsynced, so a blob's final path only ever holds complete content. Temporary files
/// left behind by a crashed process are removed when a store is created, once they are an hour old. Several stores
/// (even in several processes) may share a root.
/// </remarks>
public sealed partial class FileBlobStore : IBlobStore
{
    private static readonly TimeSpan s_staleTempAge = TimeSpan.FromHours(1);

    private readonly string _blobRoot;
    private readonly string _tempDirectory;
    private readonly ILogger _logger;

    /// <summary>Creates a store rooted at <paramref name="rootDirectory"/> (created if missing).</summary>
    /// <param name="rootDirectory">The directory under which <c>blobs/</c> is kept.</param>
    /// <param name="logger">Receives corruption and clean-up messages.</param>
    /// <param name="timeProvider">The clock used to age temporary files; <see cref="TimeProvider.System"/> by default.</param>
    public FileBlobStore(string rootDirectory, ILogger<FileBlobStore>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rootDirectory);
        RootDirectory = Path.GetFullPath(rootDirectory);
        _blobRoot = Path.Combine(RootDirectory, "blobs", "sha256");
        _tempDirectory = Path.Combine(RootDirectory, "blobs", "tmp");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Directory.CreateDirectory(_blobRoot);
        Directory.CreateDirectory(_tempDirectory);
        RemoveStaleTemporaryFiles((timeProvider ?? TimeProvider.System).GetUtcNow() - s_staleTempAge);
    }

    /// <summary>The root directory.</summary>
    public string RootDirectory { get; }

    /// <inheritdoc />
    public async ValueTask<string> PutAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Digest digest = Digest.Compute(bytes.Span);
        string path = PathFor(digest);
        if (IsStored(path, bytes.Length))
        {
            return digest.Value;
        }

        string temp = NewTempPath();
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                await file.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            Commit(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        return digest.Value;
    }

    /// <inheritdoc />
    /// <exception cref="BlobTooLargeException">The content is longer than <paramref name="maxBytes"/>; the temporary file has been removed.</exception>
    public async ValueTask<string> PutAsync(Stream content, long? maxBytes = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (maxBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "The size limit must not be negative.");
        }

        if (maxBytes is long limit && content.CanSeek && content.Length - content.Position > limit)
        {
            throw new BlobTooLargeException(limit);
        }

        cancellationToken.ThrowIfCancellationRequested();
        string temp = NewTempPath();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long total = 0;
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > maxBytes)
                    {
                        throw new BlobTooLargeException(maxBytes.Value);
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                file.Flush(flushToDisk: true);
            }

            Span<byte> sha256 = stackalloc byte[SHA256.HashSizeInBytes];
            hash.GetHashAndReset(sha256);
            Digest digest = Digest.FromHash(sha256);
            string path = PathFor(digest);
            if (IsStored(path, total))
            {
                TryDelete(temp);
            }
            else
            {
                Commit(temp, path);
            }

            return digest.Value;
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc />
    public bool Exists(string digest) => File.Exists(PathFor(ParseDigest(digest)));

    /// <inheritdoc />
    public async ValueTask<byte[]?> ReadAsync(string digest, CancellationToken cancellationToken = default)
    {
        Digest expected = ParseDigest(digest);
        string path = PathFor(expected);
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        Digest actual = Digest.Compute(bytes);
        if (actual != expected)
        {
            Log.BlobCorrupted(_logger, expected.Value, path, actual.Value);
            throw new BlobCorruptedException(expected.Value, path, actual.Value);
        }

        return bytes;
    }

    /// <inheritdoc />
    public string GetPath(string digest) => PathFor(ParseDigest(digest));

    /// <inheritdoc />
    public ValueTask<bool> DeleteAsync(string digest, CancellationToken cancellationToken = default)
    {
        string path = PathFor(ParseDigest(digest));
        cancellationToken.ThrowIfCancellationRequested();
        if (!File.Exists(path))
        {
            return ValueTask.FromResult(false);
        }

        File.Delete(path);
        return ValueTask.FromResult(true);
    }

    /// <inheritdoc />
    public IEnumerable<string> List()
    {
        var options = new EnumerationOptions { IgnoreInaccessible = true, RecurseSubdirectories = false };
        foreach (string directory in Directory.EnumerateDirectories(_blobRoot, "??", options))
        {
            string prefix = Path.GetFileName(directory);
            foreach (string file in Directory.EnumerateFiles(directory, prefix + "*", options))
            {
                string candidate = Digest.Sha256Prefix + Path.GetFileName(file);
                if (Digest.IsValid(candidate))
                {
                    yield return candidate;
                }
            }
        }
    }

    private static Digest ParseDigest(string digest) => Digest.Parse(digest, nameof(digest));

    private string PathFor(Digest digest) => Path.Combine(_blobRoot, digest.Hex[..2], digest.Hex);

    private string NewTempPath() => Path.Combine(_tempDirectory, Guid.NewGuid().ToString("N") + ".tmp");

    private static bool IsStored(string path, long length)
    {
        var info = new FileInfo(path);
        return info.Exists && info.Length == length; // a wrong length means damage: store it again over the top
    }

    private void Commit(string temp, string path)
    {
        string directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory);
            SyncDirectory(_blobRoot);
        }

        try
        {
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another writer stored the same content first (and the platform refuses to replace an open file).
            TryDelete(temp);
        }

        SyncDirectory(directory);
    }

    private void SyncDirectory(string directory)
    {
        if (!DirectorySync.TryFlush(directory))
        {
            Log.DirectorySyncUnavailable(_logger, directory);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort; stale temporary files are removed by the next store created on this root.
        }
    }

    private void RemoveStaleTemporaryFiles(DateTimeOffset olderThan)
    {
        foreach (string file in Directory.EnumerateFiles(_tempDirectory, "*.tmp"))
        {
            try
            {
                if (File.GetLastWriteTimeUtc(file) < olderThan.UtcDateTime)
                {
                    File.Delete(file);
                    Log.StaleTemporaryFileRemoved(_logger, file);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Another process may be cleaning up as well.
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3150, Level = LogLevel.Error, Message = "Blob {Digest} at {Path} is corrupt: its content hashes to {ActualDigest}.")]
        public static partial void BlobCorrupted(ILogger logger, string digest, string path, string actualDigest);

        [LoggerMessage(EventId = 3151, Level = LogLevel.Information, Message = "Removed stale temporary blob file {Path}.")]
        public static partial void StaleTemporaryFileRemoved(ILogger logger, string path);

        [LoggerMessage(EventId = 3152, Level = LogLevel.Debug, Message = "This platform cannot fsync the directory {Directory}; relying on the file system to order renames.")]
        public static partial void DirectorySyncUnavailable(ILogger logger, string directory);
    }
}
