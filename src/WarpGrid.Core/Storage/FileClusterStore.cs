using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace WarpGrid.Core.Storage;

/// <summary>
/// The embedded, single-node <see cref="IClusterStore"/>: one directory, no configuration.
/// </summary>
/// <remarks>
/// <para>
/// Every write is appended to a write-ahead log and fsynced before <see cref="PutAsync"/> or <see cref="DeleteAsync"/>
/// returns. Writes go through a single writer; writes that arrive while it is flushing are committed together in the
/// next flush (group commit), so many concurrent writers share each fsync. Reads never take a lock: they see an
/// immutable index that is replaced after every commit, and only ever show durable data.
/// </para>
/// <para>
/// When the log grows past <see cref="FileClusterStoreOptions.CompactionThresholdBytes"/> (and past
/// <see cref="FileClusterStoreOptions.CompactionLiveDataFactor"/> times the live data) the live keys are written to a
/// snapshot (temporary file, fsync, atomic rename, directory fsync) and only then is the log emptied. Recovery loads
/// the snapshot and replays the log, skipping log records the snapshot already contains, so a crash at any point of a
/// compaction is harmless. A torn tail left by a crash during a write is truncated with a warning; damage anywhere else
/// makes the store refuse to open with <see cref="StoreCorruptedException"/>.
/// </para>
/// <para>
/// The directory is owned by one process at a time through an exclusive lock on its <c>LOCK</c> file.
/// </para>
/// </remarks>
public sealed partial class FileClusterStore : IClusterStore, IAsyncDisposable
{
    /// <summary>The longest key accepted, in UTF-8 bytes.</summary>
    public const int MaxKeyBytes = 1024;

    /// <summary>The largest value accepted, in bytes (16 MiB).</summary>
    public const int MaxValueBytes = 16 * 1024 * 1024;

    private const int MaxBatchOperations = 4096;
    private const long MaxBatchBytes = 8L * 1024 * 1024;
    private const int QueueCapacity = 8192;
    private const int EntryOverhead = 48;

    private readonly string _directory;
    private readonly string _logPath;
    private readonly string _snapshotPath;
    private readonly FileClusterStoreOptions _options;
    private readonly ILogger _logger;
    private readonly FileStream _lockFile;
    private readonly FileStream _log;
    private readonly Channel<WriteRequest> _queue;
    private readonly WatchHub _watchHub;
    private readonly FrameBuffer _frame = new();
    private readonly Task _writerTask;

    private volatile IndexState _state;
    private volatile Exception? _fault;
    private long _logLength;
    private long _liveBytes;
    private long _flushCount;
    private long _compactionCount;
    private long _compactionRetryLength;
    private int _disposed;

    /// <summary>Opens (creating if needed) the store in <paramref name="directory"/> with default options.</summary>
    /// <param name="directory">The data directory; created if missing.</param>
    /// <param name="logger">Receives recovery, compaction and failure messages.</param>
    /// <exception cref="IOException">The directory is in use by another process, or cannot be read or written.</exception>
    /// <exception cref="StoreCorruptedException">The snapshot or log is damaged beyond a torn tail.</exception>
    public FileClusterStore(string directory, ILogger<FileClusterStore>? logger = null)
        : this(directory, new FileClusterStoreOptions(), logger)
    {
    }

    /// <summary>Opens (creating if needed) the store in <paramref name="directory"/>.</summary>
    /// <param name="directory">The data directory; created if missing.</param>
    /// <param name="options">Compaction and watch tuning.</param>
    /// <param name="logger">Receives recovery, compaction and failure messages.</param>
    /// <exception cref="IOException">The directory is in use by another process, or cannot be read or written.</exception>
    /// <exception cref="StoreCorruptedException">The snapshot or log is damaged beyond a torn tail.</exception>
    public FileClusterStore(string directory, FileClusterStoreOptions options, ILogger<FileClusterStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _directory = Path.GetFullPath(directory);
        _logPath = Path.Combine(_directory, StoreFileFormat.LogFileName);
        _snapshotPath = Path.Combine(_directory, StoreFileFormat.SnapshotFileName);

        Directory.CreateDirectory(_directory);
        _lockFile = AcquireLock(_directory);
        try
        {
            string leftover = Path.Combine(_directory, StoreFileFormat.SnapshotTempFileName);
            if (File.Exists(leftover))
            {
                File.Delete(leftover);
            }

            var entries = ImmutableSortedDictionary.CreateBuilder<string, StoreEntry>(StringComparer.Ordinal);
            long snapshotRevision = LoadSnapshot(entries);

            // The changes replayed from the log seed the watch history (only as many as it can hold).
            var replayed = new Queue<StoreEvent>();
            (long validLength, long fileLength, long revision, long replayedCount) = ReplayLog(entries, snapshotRevision, replayed);
            long historyFloor = replayed.TryPeek(out StoreEvent? oldest) ? oldest.Entry.ModRevision - 1 : Math.Max(revision, snapshotRevision);
            _watchHub = new WatchHub(options.WatchHistoryCapacity, options.WatchHistoryMaxBytes, options.WatchBufferCapacity, historyFloor);
            _watchHub.Publish([.. replayed]);

            _log = new FileStream(_logPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
            if (validLength < fileLength)
            {
                Log.TornTailTruncated(_logger, _logPath, validLength, fileLength - validLength);
                _log.SetLength(validLength);
                _log.Flush(flushToDisk: true);
            }

            _log.Position = validLength;
            _logLength = validLength;
            _state = new IndexState(entries.ToImmutable(), Math.Max(revision, snapshotRevision));
            foreach (StoreEntry entry in _state.Entries.Values)
            {
                _liveBytes += EntrySize(entry);
            }

            Log.Opened(_logger, _directory, _state.Entries.Count, _state.Revision, snapshotRevision, replayedCount);
        }
        catch
        {
            _log?.Dispose();
            _lockFile.Dispose();
            throw;
        }

        _queue = Channel.CreateBounded<WriteRequest>(new BoundedChannelOptions(QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _writerTask = Task.Run(WriterLoopAsync);
    }

    /// <summary>
    /// Opens the store on a thread-pool thread, so that replaying a large log does not block the caller.
    /// Otherwise identical to the constructor.
    /// </summary>
    /// <param name="directory">The data directory; created if missing.</param>
    /// <param name="options">Compaction and watch tuning; defaults when null.</param>
    /// <param name="logger">Receives recovery, compaction and failure messages.</param>
    /// <param name="cancellationToken">Cancels the open before it starts.</param>
    public static Task<FileClusterStore> OpenAsync(
        string directory, FileClusterStoreOptions? options = null, ILogger<FileClusterStore>? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        return Task.Run(() => new FileClusterStore(directory, options ?? new FileClusterStoreOptions(), logger), cancellationToken);
    }

    /// <inheritdoc />
    public long Revision => _state.Revision;

    /// <summary>The data directory.</summary>
    public string DirectoryPath => _directory;

    /// <summary>The number of log flushes (fsyncs) so far; with group commit this is usually far below the write count.</summary>
    internal long FlushCount => Interlocked.Read(ref _flushCount);

    /// <summary>The number of completed compactions since the store was opened.</summary>
    internal long CompactionCount => Interlocked.Read(ref _compactionCount);

    internal int WatcherCount => _watchHub.WatcherCount;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The key is empty, longer than <see cref="MaxKeyBytes"/>, contains NUL or is not valid UTF-16.</exception>
    public ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(_state.Entries.TryGetValue(key, out StoreEntry? entry) ? entry : null);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();

        var result = new List<StoreEntry>();
        bool inRange = false;
        foreach (KeyValuePair<string, StoreEntry> pair in _state.Entries)
        {
            if (pair.Key.StartsWith(prefix, StringComparison.Ordinal))
            {
                inRange = true;
                result.Add(pair.Value);
            }
            else if (inRange)
            {
                break; // keys with a common prefix are contiguous in ordinal order
            }
        }

        return ValueTask.FromResult<IReadOnlyList<StoreEntry>>(result);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The key is invalid (see <see cref="GetAsync"/>) or the value is larger than <see cref="MaxValueBytes"/>.</exception>
    /// <exception cref="StoreConflictException">The key's mod revision differs from <paramref name="expectedModRevision"/>.</exception>
    /// <exception cref="ObjectDisposedException">The store has been disposed.</exception>
    /// <remarks>
    /// Cancellation is honoured until the write reaches the writer; after that the call completes with the write's outcome.
    /// The value is copied, so the caller may reuse its buffer.
    /// </remarks>
    public ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long? expectedModRevision = null, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        if (value.Length > MaxValueBytes)
        {
            throw new ArgumentException($"The value is {value.Length} bytes; the limit is {MaxValueBytes} bytes (16 MiB).", nameof(value));
        }

        ValidateExpectedRevision(expectedModRevision);
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<long>(cancellationToken);
        }

        return EnqueueAsync(new WriteRequest(RequestKind.Put, key, value.ToArray(), expectedModRevision, cancellationToken));
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The key is invalid (see <see cref="GetAsync"/>).</exception>
    /// <exception cref="StoreConflictException">The key's mod revision differs from <paramref name="expectedModRevision"/>.</exception>
    /// <exception cref="ObjectDisposedException">The store has been disposed.</exception>
    public ValueTask<bool> DeleteAsync(string key, long? expectedModRevision = null, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        ValidateExpectedRevision(expectedModRevision);
        ThrowIfDisposed();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        return DeleteCoreAsync(new WriteRequest(RequestKind.Delete, key, [], expectedModRevision, cancellationToken));
    }

    /// <inheritdoc />
    /// <remarks>
    /// Throws <see cref="StoreCompactedException"/> when <paramref name="afterRevision"/> is older than the retained
    /// history (after a restart the history holds the changes replayed from the log). A watcher that stops reading does
    /// not slow writers down: once its buffer is full it is detached and later catches up from the history, or ends
    /// with <see cref="StoreCompactedException"/> if the history has moved on. Disposing the store ends every watch
    /// with <see cref="ObjectDisposedException"/>. A delete is reported with an empty value, the delete's revision as
    /// <see cref="StoreEntry.ModRevision"/> and 0 as <see cref="StoreEntry.CreateRevision"/>.
    /// </remarks>
    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, long afterRevision, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentOutOfRangeException.ThrowIfNegative(afterRevision);
        ThrowIfDisposed();
        return WatchCoreAsync(prefix, afterRevision, cancellationToken);
    }

    /// <summary>Writes a snapshot and empties the log now, regardless of the compaction threshold.</summary>
    public async ValueTask CompactAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        await EnqueueAsync(new WriteRequest(RequestKind.Compact, string.Empty, [], null, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Finishes the writes already queued, ends all watches, closes the files and releases the directory lock.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _writerTask.ConfigureAwait(false);
            return;
        }

        _queue.Writer.TryComplete();
        await _writerTask.ConfigureAwait(false);
        _watchHub.Close();
        try
        {
            if (_fault is null)
            {
                _log.Flush(flushToDisk: true);
            }
        }
        finally
        {
            _log.Dispose();
            _lockFile.Dispose();
        }
    }

    private static FileStream AcquireLock(string directory)
    {
        string path = Path.Combine(directory, StoreFileFormat.LockFileName);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new IOException($"The data directory '{directory}' is in use by another process (its lock file '{path}' is held). Stop the other WarpGrid node or use a different directory.", ex);
        }
    }

    private async ValueTask<bool> DeleteCoreAsync(WriteRequest request) => await EnqueueAsync(request).ConfigureAwait(false) > 0;

    internal static void ValidateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0)
        {
            throw new ArgumentException("The key must not be empty.", nameof(key));
        }

        if (key.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("The key must not contain NUL characters.", nameof(key));
        }

        int bytes;
        try
        {
            bytes = StoreFileFormat.StrictUtf8.GetByteCount(key);
        }
        catch (EncoderFallbackException ex)
        {
            throw new ArgumentException("The key is not valid UTF-16 (it contains an unpaired surrogate).", nameof(key), ex);
        }

        if (bytes > MaxKeyBytes)
        {
            throw new ArgumentException($"The key is {bytes} bytes in UTF-8; the limit is {MaxKeyBytes} bytes.", nameof(key));
        }
    }

    internal static void ValidateExpectedRevision(long? expectedModRevision)
    {
        if (expectedModRevision < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(expectedModRevision), expectedModRevision, "The expected mod revision must be 0 (must not exist) or positive.");
        }
    }

    private static long EntrySize(StoreEntry entry) => EntryOverhead + entry.Key.Length + entry.Value.Length;

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private async ValueTask<long> EnqueueAsync(WriteRequest request)
    {
        if (_fault is { } fault)
        {
            throw Faulted(fault);
        }

        if (!_queue.Writer.TryWrite(request))
        {
            try
            {
                await _queue.Writer.WriteAsync(request, request.CancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                throw new ObjectDisposedException(nameof(FileClusterStore));
            }
        }

        return await request.Task.ConfigureAwait(false);
    }

    private static InvalidOperationException Faulted(Exception fault) =>
        new("The store stopped accepting writes after a write to its log failed; reopen it to recover. See the inner exception.", fault);

    private IAsyncEnumerable<StoreEvent> WatchCoreAsync(string prefix, long afterRevision, CancellationToken cancellationToken) =>
        _watchHub.StreamAsync(prefix, afterRevision, nameof(FileClusterStore), resumeAfter => Log.WatcherCatchingUp(_logger, prefix, resumeAfter), cancellationToken);

    private long LoadSnapshot(ImmutableSortedDictionary<string, StoreEntry>.Builder entries)
    {
        if (!File.Exists(_snapshotPath))
        {
            return 0;
        }

        using var file = new FileStream(_snapshotPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1024 * 1024, FileOptions.SequentialScan);
        var reader = new ChecksummedReader(file, _snapshotPath);
        if (reader.ReadUInt32() != StoreFileFormat.SnapshotMagic)
        {
            throw new StoreCorruptedException(_snapshotPath, 0, "not a WarpGrid snapshot (bad magic number)");
        }

        uint version = reader.ReadUInt32();
        if (version != StoreFileFormat.FormatVersion)
        {
            throw new StoreCorruptedException(_snapshotPath, 4, $"unsupported snapshot format version {version}");
        }

        long revision = reader.ReadInt64();
        long count = reader.ReadInt64();
        if (revision < 0 || count < 0 || count > revision)
        {
            throw new StoreCorruptedException(_snapshotPath, 8, $"invalid header (revision {revision}, {count} entries)");
        }

        byte[] keyBuffer = new byte[MaxKeyBytes];
        for (long i = 0; i < count; i++)
        {
            long offset = reader.Position;
            int keyLength = reader.ReadInt32();
            if (keyLength <= 0 || keyLength > MaxKeyBytes)
            {
                throw new StoreCorruptedException(_snapshotPath, offset, $"invalid key length {keyLength}");
            }

            reader.ReadExactly(keyBuffer.AsSpan(0, keyLength));
            string key;
            try
            {
                key = StoreFileFormat.StrictUtf8.GetString(keyBuffer, 0, keyLength);
            }
            catch (DecoderFallbackException)
            {
                throw new StoreCorruptedException(_snapshotPath, offset, "key is not valid UTF-8");
            }

            int valueLength = reader.ReadInt32();
            if (valueLength < 0 || valueLength > MaxValueBytes)
            {
                throw new StoreCorruptedException(_snapshotPath, offset, $"invalid value length {valueLength}");
            }

            byte[] value = valueLength == 0 ? [] : new byte[valueLength];
            reader.ReadExactly(value);
            long modRevision = reader.ReadInt64();
            long createRevision = reader.ReadInt64();
            if (createRevision <= 0 || createRevision > modRevision || modRevision > revision)
            {
                throw new StoreCorruptedException(_snapshotPath, offset, $"invalid revisions {modRevision}/{createRevision} for key '{key}'");
            }

            entries[key] = new StoreEntry(key, value, modRevision, createRevision);
        }

        long checksumOffset = reader.Position;
        if (!reader.ReadAndVerifyChecksum())
        {
            throw new StoreCorruptedException(_snapshotPath, checksumOffset, "checksum mismatch");
        }

        if (file.Position != file.Length)
        {
            throw new StoreCorruptedException(_snapshotPath, file.Position, "unexpected data after the checksum");
        }

        return revision;
    }

    /// <summary>
    /// Replays the log into <paramref name="entries"/>. Returns the length of the valid prefix (anything after it is a
    /// torn tail for the caller to cut off), the file's length and the newest revision seen.
    /// </summary>
    private (long ValidLength, long FileLength, long Revision, long ReplayedCount) ReplayLog(
        ImmutableSortedDictionary<string, StoreEntry>.Builder entries, long snapshotRevision, Queue<StoreEvent> replayed)
    {
        long replayedCount = 0;
        var info = new FileInfo(_logPath);
        if (!info.Exists || info.Length < StoreFileFormat.FileHeaderSize)
        {
            if (info.Exists && info.Length > 0)
            {
                Log.TornTailTruncated(_logger, _logPath, 0, info.Length);
            }

            CreateEmptyLog();
            return (StoreFileFormat.FileHeaderSize, StoreFileFormat.FileHeaderSize, snapshotRevision, 0);
        }

        using var file = new FileStream(_logPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1024 * 1024, FileOptions.SequentialScan);
        long fileLength = file.Length;
        Span<byte> header = stackalloc byte[StoreFileFormat.FrameHeaderSize];
        file.ReadExactly(header);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != StoreFileFormat.LogMagic)
        {
            throw new StoreCorruptedException(_logPath, 0, "not a WarpGrid log (bad magic number)");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (version != StoreFileFormat.FormatVersion)
        {
            throw new StoreCorruptedException(_logPath, 4, $"unsupported log format version {version}");
        }

        long offset = StoreFileFormat.FileHeaderSize;
        long lastLogRevision = 0;
        long revision = snapshotRevision;
        var operations = new List<LogOperation>();
        byte[] payload = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (offset < fileLength)
            {
                string? problem = null;
                uint length = 0;
                long remaining = fileLength - offset;
                if (remaining < StoreFileFormat.FrameHeaderSize)
                {
                    problem = "incomplete frame header";
                }
                else
                {
                    file.ReadExactly(header);
                    length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                    if (length < StoreFileFormat.MinOperationSize || length > StoreFileFormat.MaxFramePayload)
                    {
                        problem = $"invalid frame length {length}";
                    }
                    else if (length > remaining - StoreFileFormat.FrameHeaderSize)
                    {
                        problem = $"frame of {length} bytes extends past the end of the file";
                    }
                    else
                    {
                        if (payload.Length < length)
                        {
                            ArrayPool<byte>.Shared.Return(payload);
                            payload = ArrayPool<byte>.Shared.Rent((int)length);
                        }

                        file.ReadExactly(payload.AsSpan(0, (int)length));
                        if (StoreFileFormat.FrameChecksum(length, payload.AsSpan(0, (int)length)) != BinaryPrimitives.ReadUInt32LittleEndian(header[4..]))
                        {
                            problem = "checksum mismatch";
                        }
                    }
                }

                if (problem is not null)
                {
                    // Frames are written one fsync at a time, so only the last can be torn by a crash. If any valid frame
                    // follows, this one was acknowledged and has since been damaged: refuse rather than drop it.
                    if (StoreFileFormat.ContainsValidFrame(file.SafeFileHandle, offset + 1, fileLength, lastLogRevision + 1))
                    {
                        throw new StoreCorruptedException(_logPath, offset, problem + ", and valid records follow it");
                    }

                    return (offset, fileLength, revision, replayedCount);
                }

                operations.Clear();
                if (StoreFileFormat.TryDecodeFrame(payload.AsSpan(0, (int)length), operations) is { } malformed)
                {
                    throw new StoreCorruptedException(_logPath, offset, malformed);
                }

                foreach (LogOperation op in operations)
                {
                    if (lastLogRevision == 0 ? op.Revision > snapshotRevision + 1 : op.Revision != lastLogRevision + 1)
                    {
                        string expected = lastLogRevision == 0 ? $"at most {snapshotRevision + 1} (the snapshot ends at {snapshotRevision})" : (lastLogRevision + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
                        throw new StoreCorruptedException(_logPath, offset, $"found revision {op.Revision} where {expected} was expected; records are missing");
                    }

                    lastLogRevision = op.Revision;
                    if (op.Revision <= snapshotRevision)
                    {
                        continue; // already in the snapshot (a crash came between the snapshot's rename and the log reset)
                    }

                    replayed.Enqueue(Apply(entries, op));
                    if (replayed.Count > _options.WatchHistoryCapacity)
                    {
                        replayed.Dequeue();
                    }

                    replayedCount++;
                    revision = op.Revision;
                }

                offset += StoreFileFormat.FrameHeaderSize + length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
        }

        return (offset, fileLength, revision, replayedCount);
    }

    private static StoreEvent Apply(ImmutableSortedDictionary<string, StoreEntry>.Builder entries, LogOperation op)
    {
        if (op.Kind == StoreEventKind.Put)
        {
            var entry = new StoreEntry(op.Key, op.Value, op.Revision, op.CreateRevision);
            entries[op.Key] = entry;
            return new StoreEvent(StoreEventKind.Put, entry);
        }

        entries.Remove(op.Key);
        return new StoreEvent(StoreEventKind.Delete, new StoreEntry(op.Key, ReadOnlyMemory<byte>.Empty, op.Revision, 0));
    }

    private void CreateEmptyLog()
    {
        using (var file = new FileStream(_logPath, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0))
        {
            Span<byte> header = stackalloc byte[StoreFileFormat.FileHeaderSize];
            StoreFileFormat.WriteFileHeader(header, StoreFileFormat.LogMagic);
            file.Write(header);
            file.Flush(flushToDisk: true);
        }

        SyncDirectory();
    }

    private void SyncDirectory()
    {
        if (!DirectorySync.TryFlush(_directory))
        {
            Log.DirectorySyncUnavailable(_logger, _directory);
        }
    }

    private async Task WriterLoopAsync()
    {
        ChannelReader<WriteRequest> reader = _queue.Reader;
        var batch = new List<WriteRequest>();
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                batch.Clear();
                long bytes = 0;
                while (batch.Count < MaxBatchOperations && bytes < MaxBatchBytes && reader.TryRead(out WriteRequest? request))
                {
                    batch.Add(request);
                    bytes += request.Value.Length + request.Key.Length;
                }

                CommitBatch(batch);
            }
        }
        catch (Exception ex)
        {
            // Unreachable by design; make sure nobody waits forever if it happens.
            _fault ??= ex;
            Log.WriteFailed(_logger, ex, _logPath);
            foreach (WriteRequest request in batch)
            {
                request.TrySetException(Faulted(ex));
            }

            _queue.Writer.TryComplete();
            while (reader.TryRead(out WriteRequest? request))
            {
                request.TrySetException(Faulted(ex));
            }
        }
    }

    private void CommitBatch(List<WriteRequest> batch)
    {
        if (_fault is { } fault)
        {
            foreach (WriteRequest request in batch)
            {
                request.TrySetException(Faulted(fault));
            }

            return;
        }

        IndexState state = _state;
        ImmutableSortedDictionary<string, StoreEntry>.Builder? entries = null;
        long revision = state.Revision;
        long liveBytes = _liveBytes;
        var events = new List<StoreEvent>();
        bool compactRequested = false;
        _frame.Reset();

        foreach (WriteRequest request in batch)
        {
            if (request.Kind == RequestKind.Compact)
            {
                compactRequested = true;
                continue;
            }

            if (request.CancellationToken.IsCancellationRequested)
            {
                request.Outcome = Outcome.Cancelled;
                continue;
            }

            entries ??= state.Entries.ToBuilder();
            entries.TryGetValue(request.Key, out StoreEntry? current);
            long actual = current?.ModRevision ?? 0;
            if (request.ExpectedModRevision is long expected && expected != actual)
            {
                request.Outcome = Outcome.Conflict;
                request.ConflictActual = actual;
                continue;
            }

            if (request.Kind == RequestKind.Delete)
            {
                if (current is null)
                {
                    request.Outcome = Outcome.Done;
                    request.Revision = 0;
                    continue;
                }

                revision++;
                entries.Remove(request.Key);
                liveBytes -= EntrySize(current);
                _frame.Append(StoreEventKind.Delete, revision, 0, request.Key, default);
                events.Add(new StoreEvent(StoreEventKind.Delete, new StoreEntry(request.Key, ReadOnlyMemory<byte>.Empty, revision, 0)));
            }
            else
            {
                revision++;
                var entry = new StoreEntry(request.Key, request.Value, revision, current?.CreateRevision ?? revision);
                entries[request.Key] = entry;
                liveBytes += EntrySize(entry) - (current is null ? 0 : EntrySize(current));
                _frame.Append(StoreEventKind.Put, revision, entry.CreateRevision, request.Key, request.Value);
                events.Add(new StoreEvent(StoreEventKind.Put, entry));
            }

            request.Outcome = Outcome.Done;
            request.Revision = revision;
        }

        if (_frame.OperationCount > 0)
        {
            try
            {
                _log.Write(_frame.Seal());
                _log.Flush(flushToDisk: true);
            }
            catch (Exception ex)
            {
                // The tail of the log is now unknown; the next open truncates whatever part of this frame reached disk.
                _fault = ex;
                Log.WriteFailed(_logger, ex, _logPath);
                foreach (WriteRequest request in batch)
                {
                    request.TrySetException(Faulted(ex));
                }

                return;
            }

            _logLength += _frame.Length;
            Interlocked.Increment(ref _flushCount);
            _state = new IndexState(entries!.ToImmutable(), revision);
            _liveBytes = liveBytes;
            _watchHub.Publish(events);
        }

        foreach (WriteRequest request in batch)
        {
            switch (request.Outcome)
            {
                case Outcome.Done:
                    request.TrySetResult(request.Revision);
                    break;
                case Outcome.Cancelled:
                    request.TrySetCanceled(request.CancellationToken);
                    break;
                case Outcome.Conflict:
                    request.TrySetException(new StoreConflictException(request.Key, request.ExpectedModRevision!.Value, request.ConflictActual));
                    break;
                default:
                    break; // compaction requests complete below
            }
        }

        if (compactRequested || (_logLength >= _compactionRetryLength
            && _logLength >= Math.Max(_options.CompactionThresholdBytes, _options.CompactionLiveDataFactor * _liveBytes)))
        {
            Exception? error = null;
            try
            {
                Compact();
            }
            catch (Exception ex)
            {
                error = ex;
                _compactionRetryLength = _logLength + _options.CompactionThresholdBytes; // do not retry on every batch
                Log.CompactionFailed(_logger, ex, _directory);
            }

            foreach (WriteRequest request in batch)
            {
                if (request.Kind == RequestKind.Compact)
                {
                    if (error is null)
                    {
                        request.TrySetResult(0);
                    }
                    else
                    {
                        request.TrySetException(error);
                    }
                }
            }
        }
    }

    private void Compact()
    {
        IndexState state = _state;
        long previousLength = _logLength;
        string temp = Path.Combine(_directory, StoreFileFormat.SnapshotTempFileName);
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1024 * 1024))
        {
            var writer = new ChecksummedWriter(file);
            writer.WriteUInt32(StoreFileFormat.SnapshotMagic);
            writer.WriteUInt32(StoreFileFormat.FormatVersion);
            writer.WriteInt64(state.Revision);
            writer.WriteInt64(state.Entries.Count);
            byte[] keyBuffer = new byte[MaxKeyBytes];
            foreach (StoreEntry entry in state.Entries.Values)
            {
                int keyLength = StoreFileFormat.StrictUtf8.GetBytes(entry.Key, keyBuffer);
                writer.WriteInt32(keyLength);
                writer.Write(keyBuffer.AsSpan(0, keyLength));
                writer.WriteInt32(entry.Value.Length);
                writer.Write(entry.Value.Span);
                writer.WriteInt64(entry.ModRevision);
                writer.WriteInt64(entry.CreateRevision);
            }

            writer.WriteChecksum();
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, _snapshotPath, overwrite: true);

        // The rename must be durable before the log is emptied; otherwise a crash could lose both.
        SyncDirectory();

        try
        {
            _log.SetLength(StoreFileFormat.FileHeaderSize);
            _log.Position = StoreFileFormat.FileHeaderSize;
            _log.Flush(flushToDisk: true);
        }
        catch (Exception ex)
        {
            _fault = ex; // the log's state is unknown; the next open sorts it out (records <= snapshot are skipped)
            throw;
        }

        _logLength = StoreFileFormat.FileHeaderSize;
        Interlocked.Increment(ref _compactionCount);
        Log.Compacted(_logger, _directory, state.Revision, state.Entries.Count, previousLength);
    }

    private sealed record IndexState(ImmutableSortedDictionary<string, StoreEntry> Entries, long Revision);

    private enum RequestKind
    {
        Put,
        Delete,
        Compact,
    }

    private enum Outcome
    {
        Pending,
        Done,
        Conflict,
        Cancelled,
    }

    private sealed class WriteRequest(RequestKind kind, string key, byte[] value, long? expectedModRevision, CancellationToken cancellationToken)
        : TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public RequestKind Kind { get; } = kind;

        public string Key { get; } = key;

        public byte[] Value { get; } = value;

        public long? ExpectedModRevision { get; } = expectedModRevision;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public Outcome Outcome { get; set; }

        public long Revision { get; set; }

        public long ConflictActual { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Opened cluster store in {Directory}: {KeyCount} keys at revision {Revision} (snapshot revision {SnapshotRevision}, {ReplayedCount} changes replayed from the log).")]
        public static partial void Opened(ILogger logger, string directory, int keyCount, long revision, long snapshotRevision, long replayedCount);

        [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "The log {Path} ends with an incomplete or damaged record at offset {Offset} (left by an interrupted write); dropping its last {DroppedBytes} bytes. No acknowledged write is lost.")]
        public static partial void TornTailTruncated(ILogger logger, string path, long offset, long droppedBytes);

        [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Compacted cluster store in {Directory}: snapshot at revision {Revision} with {KeyCount} keys replaced a log of {LogBytes} bytes.")]
        public static partial void Compacted(ILogger logger, string directory, long revision, int keyCount, long logBytes);

        [LoggerMessage(EventId = 3103, Level = LogLevel.Error, Message = "Compacting the cluster store in {Directory} failed; the log is kept and compaction will be retried.")]
        public static partial void CompactionFailed(ILogger logger, Exception exception, string directory);

        [LoggerMessage(EventId = 3104, Level = LogLevel.Critical, Message = "Writing the cluster store log {Path} failed; the store rejects further writes until it is reopened.")]
        public static partial void WriteFailed(ILogger logger, Exception exception, string path);

        [LoggerMessage(EventId = 3105, Level = LogLevel.Debug, Message = "A watch on prefix '{Prefix}' fell behind and is catching up from the history after revision {Revision}.")]
        public static partial void WatcherCatchingUp(ILogger logger, string prefix, long revision);

        [LoggerMessage(EventId = 3106, Level = LogLevel.Debug, Message = "This platform cannot fsync the directory {Directory}; relying on the file system to order renames.")]
        public static partial void DirectorySyncUnavailable(ILogger logger, string directory);
    }
}
