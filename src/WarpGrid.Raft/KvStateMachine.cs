using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Storage;

namespace WarpGrid.Raft;

/// <summary>
/// The replicated state. Keys, values and revisions live in FASTER (<see cref="FasterStateStore"/>); an immutable
/// sorted set of the keys (keys only) stays in memory for ordered prefix lists, since FASTER's hash index is unordered,
/// and is rebuilt from FASTER on recovery. Every <c>SnapshotInterval</c> log entries the applier starts a FASTER
/// checkpoint whose commit cookie carries the Raft index and the store revision (written in the background, see
/// <see cref="FasterStateStore.TryBeginCheckpointAsync"/>), and DotNext writes a snapshot file produced by iterating
/// FASTER (sent to followers that are too far behind; entries before it are dropped from the WAL).
/// On start the newest FASTER checkpoint is recovered and the WAL replays the entries after the cookie's index; when
/// the checkpoint is unusable, the newest snapshot file is loaded into FASTER instead and the WAL replays after it.
/// </summary>
internal sealed partial class KvStateMachine : SimpleStateMachine
{
    private const uint SnapshotMagic = 0x53524757; // "WGRS"
    private const uint SnapshotFormatVersion = 1;
    private const int ReadChunk = 256;

    private readonly int _snapshotInterval;
    private readonly ILogger _logger;
    private readonly WatchHub _watchHub;
    private readonly FasterStateStore _faster;
    private readonly SemaphoreSlim _applyGate = new(1, 1);
    private volatile ImmutableSortedSet<string> _keys;
    private volatile TaskCompletionSource _applied = NewSignal();
    private long _revision;
    private long _sequence; // odd while the applier changes the state (lists retry or take the gate)
    private long _stateIndex; // the Raft index the FASTER state reflects (applier only)
    private int _entriesSinceSnapshot;
    private long _snapshotRequested; // timestamp of the last snapshot request, until the next entry (applier only)
    private bool _checkpointDue; // a checkpoint was deferred while the previous one was written (applier only)
    private bool _checkpointDeferred; // the deferral was logged
    private volatile Exception? _checkpointFailure;
    private long _lastAppliedIndex;
    private bool _started; // set after RecoverAsync: later restores are snapshot installs from the leader
    private volatile string? _fault;

    public KvStateMachine(DirectoryInfo location, string fasterDirectory, int snapshotInterval, int watchHistoryCapacity, ILogger logger, Func<CheckpointCookie, Task>? checkpointGate = null)
        : base(location)
    {
        _snapshotInterval = snapshotInterval;
        _logger = logger;
        _watchHub = new WatchHub(watchHistoryCapacity, 64L * 1024 * 1024, 1024, 0);
        _faster = FasterStateStore.Open(fasterDirectory, logger);
        _faster.BackgroundCheckpointGate = checkpointGate;
        List<(string Key, StoredValue Value)> all = _faster.ReadAll();
        _keys = ImmutableSortedSet.CreateRange(StringComparer.Ordinal, all.Select(p => p.Key));
        _revision = _faster.Recovered.Revision;
        _stateIndex = _faster.Recovered.RaftIndex;
        _watchHub.Reset(_revision);
        if (_stateIndex > 0)
        {
            Log.CheckpointRecovered(_logger, fasterDirectory, _stateIndex, _revision, _keys.Count);
        }
    }

    /// <summary>
    /// Completes recovery before the WAL is opened: the FASTER checkpoint was recovered by the constructor; this loads the
    /// newest snapshot file instead when it is ahead of that checkpoint. The WAL then replays the entries after it.
    /// </summary>
    public async ValueTask RecoverAsync(CancellationToken cancellationToken)
    {
        await RestoreAsync(cancellationToken).ConfigureAwait(false);
        _started = true;
    }

    /// <summary>
    /// The last failure of the state machine (applying an entry, writing or loading a snapshot), or null. DotNext stops
    /// applying entries after such a failure, so the member stops making progress: this says why.
    /// </summary>
    public string? Fault => _fault;

    /// <summary>The applied store revision.</summary>
    public long Revision => Volatile.Read(ref _revision);

    /// <summary>How many keys the state holds.</summary>
    public int Count => _keys.Count;

    /// <summary>Why the FASTER state could not be recovered on start (it was rebuilt), or null.</summary>
    public string? RecoveryProblem => _faster.RecoveryProblem;

    public WatchHub Watches => _watchHub;

    /// <summary>What the newest FASTER checkpoint completed since the start covers.</summary>
    public CheckpointCookie LastCheckpoint => _faster.LastCheckpoint;

    /// <summary>Whether a FASTER checkpoint is being written in the background.</summary>
    public bool CheckpointInProgress => _faster.CheckpointInProgress;

    public long LastAppliedIndex => Volatile.Read(ref _lastAppliedIndex);

    /// <summary>Completes once the applied revision reaches <paramref name="revision"/>.</summary>
    public async ValueTask WaitForRevisionAsync(long revision, CancellationToken cancellationToken)
    {
        while (true)
        {
            TaskCompletionSource signal = _applied;
            if (Revision >= revision)
            {
                return;
            }

            await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads one key from FASTER (any thread).</summary>
    public async ValueTask<StoreEntry?> GetAsync(string key)
    {
        StoredValue? value = await _faster.ReadAsync(key).ConfigureAwait(false);
        return value is null ? null : new StoreEntry(key, value.Value, value.ModRevision, value.CreateRevision);
    }

    /// <summary>
    /// The keys under <paramref name="prefix"/> in order, with their values, as of one applied state: an optimistic
    /// read that retries when the applier changed the state meanwhile, then takes the applier's gate.
    /// </summary>
    public async ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long before = Volatile.Read(ref _sequence);
            if ((before & 1) == 0)
            {
                List<StoreEntry> entries = await ListCoreAsync(prefix).ConfigureAwait(false);
                if (Volatile.Read(ref _sequence) == before)
                {
                    return entries;
                }
            }

            await Task.Yield();
        }

        await _applyGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await ListCoreAsync(prefix).ConfigureAwait(false);
        }
        finally
        {
            _applyGate.Release();
        }
    }

    private async Task<List<StoreEntry>> ListCoreAsync(string prefix)
    {
        ImmutableSortedSet<string> keys = _keys;
        var names = new List<string>();
        int start = prefix.Length == 0 ? 0 : keys.IndexOf(prefix);
        if (start < 0)
        {
            start = ~start;
        }

        for (int i = start; i < keys.Count; i++)
        {
            string key = keys[i];
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                break;
            }

            names.Add(key);
        }

        var result = new List<StoreEntry>(names.Count);
        StoredValue?[] values = await _faster.ReadManyAsync(names).ConfigureAwait(false);
        for (int i = 0; i < names.Count; i++)
        {
            if (values[i] is { } value)
            {
                result.Add(new StoreEntry(names[i], value.Value, value.ModRevision, value.CreateRevision));
            }
        }

        return result;
    }

    protected override async ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        try
        {
            return await ApplyEntryAsync(entry, token).ConfigureAwait(false);
        }
        catch (Exception e) when (RecordFault("applying log entry", entry.Index, e))
        {
            throw; // not reached: RecordFault returns false, so the exception propagates unchanged
        }
    }

    private async ValueTask<bool> ApplyEntryAsync(LogEntry entry, CancellationToken token)
    {
        if (_checkpointFailure is { } failure)
        {
            throw new IOException($"Not applied: the FASTER checkpoint in the background failed ({failure.GetType().Name}: {failure.Message}).", failure);
        }

        if (_snapshotRequested != 0)
        {
            // DotNext writes the snapshot file before it hands over the next entry: how long the applier waited for it.
            Log.AppliedAfterSnapshot(_logger, entry.Index, System.Diagnostics.Stopwatch.GetElapsedTime(_snapshotRequested).TotalMilliseconds);
            _snapshotRequested = 0;
        }

        if (entry.Index <= _stateIndex)
        {
            // Already in the recovered FASTER checkpoint (the WAL replays from the last snapshot file, which may be older).
            Volatile.Write(ref _lastAppliedIndex, entry.Index);
            Signal();
            return false;
        }

        if (!entry.IsConfiguration && entry.TryGetPayload(out ReadOnlySequence<byte> payload) && payload.Length > 0)
        {
            List<KvOp> ops = KvCommand.Decode(payload);
            KvResult[] results = await ApplyAsync(ops, token).ConfigureAwait(false);
            (entry.Context as AppliedBatch)?.SetResults(results);
        }

        _stateIndex = entry.Index;
        Volatile.Write(ref _lastAppliedIndex, entry.Index);
        Signal();
        bool snapshot = false;
        if (++_entriesSinceSnapshot >= _snapshotInterval)
        {
            _entriesSinceSnapshot = 0;
            _checkpointDue = true;
            snapshot = true; // DotNext writes the snapshot file from FASTER's state as of this entry (PersistAsync)
        }

        if (_checkpointDue)
        {
            await BeginCheckpointAsync(entry.Index, token).ConfigureAwait(false);
        }

        if (snapshot)
        {
            _snapshotRequested = System.Diagnostics.Stopwatch.GetTimestamp();
        }

        return snapshot;
    }

    /// <summary>
    /// Starts a FASTER checkpoint of the state as of <paramref name="index"/> (the entry just applied): the version
    /// boundary is set here, between two entries, and the checkpoint is written in the background while the applier goes
    /// on. While one is still being written the next is deferred to the first entry after it has finished. A failed
    /// checkpoint is recorded as the state machine's fault when it fails, and the next entry then fails with it.
    /// </summary>
    private async ValueTask BeginCheckpointAsync(long index, CancellationToken token)
    {
        var cookie = new CheckpointCookie(index, Revision);
        Task? completion = await _faster.TryBeginCheckpointAsync(cookie, token).ConfigureAwait(false);
        if (completion is null)
        {
            if (!_checkpointDeferred)
            {
                _checkpointDeferred = true;
                Log.CheckpointDeferred(_logger, index);
            }

            return;
        }

        _checkpointDue = false;
        _checkpointDeferred = false;
        Log.CheckpointStarted(_logger, index, _faster.LastVersionSwitchDuration.TotalMilliseconds);
        _ = ObserveCheckpointAsync(completion, cookie);
    }

    private async Task ObserveCheckpointAsync(Task completion, CheckpointCookie cookie)
    {
        try
        {
            await completion.ConfigureAwait(false);
            Log.CheckpointTaken(_logger, cookie.RaftIndex, cookie.Revision, _faster.LastCheckpointDuration.TotalMilliseconds);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _checkpointFailure = e;
            RecordFault("taking the FASTER checkpoint", cookie.RaftIndex, e);
        }
    }

    private async ValueTask<KvResult[]> ApplyAsync(List<KvOp> ops, CancellationToken token)
    {
        await _applyGate.WaitAsync(token).ConfigureAwait(false);
        Interlocked.Increment(ref _sequence);
        try
        {
            long revision = _revision;
            ImmutableSortedSet<string>.Builder? keys = null;
            var results = new KvResult[ops.Count];
            var events = new List<StoreEvent>(ops.Count);
            for (int i = 0; i < ops.Count; i++)
            {
                KvOp op = ops[i];
                StoredValue? current = await _faster.ReadForApplyAsync(op.Key).ConfigureAwait(false);
                long actual = current?.ModRevision ?? 0;
                if (op.ExpectedModRevision is long expected && expected != actual)
                {
                    results[i] = new KvResult(KvOutcome.Conflict, actual);
                    continue;
                }

                if (op.Kind == KvOpKind.Delete)
                {
                    if (current is null)
                    {
                        results[i] = new KvResult(KvOutcome.Done, 0);
                        continue;
                    }

                    revision++;
                    _faster.Delete(op.Key);
                    (keys ??= _keys.ToBuilder()).Remove(op.Key);
                    events.Add(new StoreEvent(StoreEventKind.Delete, new StoreEntry(op.Key, ReadOnlyMemory<byte>.Empty, revision, 0)));
                }
                else
                {
                    revision++;
                    var value = new StoredValue(op.Value, revision, current?.CreateRevision ?? revision);
                    _faster.Upsert(op.Key, value);
                    if (current is null)
                    {
                        (keys ??= _keys.ToBuilder()).Add(op.Key);
                    }

                    events.Add(new StoreEvent(StoreEventKind.Put, new StoreEntry(op.Key, value.Value, value.ModRevision, value.CreateRevision)));
                }

                results[i] = new KvResult(KvOutcome.Done, revision);
            }

            if (keys is not null)
            {
                _keys = keys.ToImmutable();
            }

            if (events.Count > 0)
            {
                Volatile.Write(ref _revision, revision);
                _watchHub.Publish(events);
            }

            return results;
        }
        finally
        {
            Interlocked.Increment(ref _sequence);
            _applyGate.Release();
        }
    }

    /// <summary>Logs and keeps a state-machine failure; returns false so that an exception filter lets it propagate.</summary>
    private bool RecordFault(string what, long index, Exception exception)
    {
        if (exception is OperationCanceledException)
        {
            return false; // the member is stopping, or a snapshot transfer was abandoned: the leader retries it
        }

        _fault = $"{what} at Raft index {index} failed at {DateTimeOffset.UtcNow:O}: {exception.GetType().Name}: {exception.Message}";
        Log.StateMachineFailed(_logger, what, index, exception);
        return false;
    }

    private void Signal() => Interlocked.Exchange(ref _applied, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Writes the snapshot file DotNext keeps and sends to lagging followers, by iterating the FASTER state.</summary>
    /// <remarks>DotNext runs this before the next entry is applied, so the state does not change meanwhile.</remarks>
    protected override async ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token)
    {
        try
        {
            await PersistCoreAsync(writer, token).ConfigureAwait(false);
        }
        catch (Exception e) when (RecordFault("writing a snapshot", _stateIndex, e))
        {
            throw;
        }
    }

    private async ValueTask PersistCoreAsync(IAsyncBinaryWriter writer, CancellationToken token)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        ImmutableSortedSet<string> keys = _keys;
        long revision = Revision;
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        uint crc = Crc32C.Initial;
        Span<byte> header = buffer.GetSpan(24);
        BinaryPrimitives.WriteUInt32LittleEndian(header, SnapshotMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], SnapshotFormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], revision);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], keys.Count);
        buffer.Advance(24);
        var chunk = new List<string>(ReadChunk);
        int written = 0;
        foreach (string key in keys)
        {
            chunk.Add(key);
            if (chunk.Count == ReadChunk)
            {
                written += await WriteChunkAsync().ConfigureAwait(false);
            }
        }

        written += await WriteChunkAsync().ConfigureAwait(false);
        if (written != keys.Count)
        {
            throw new InvalidOperationException($"The FASTER state changed while the snapshot at revision {revision} was written ({written} of {keys.Count} keys).");
        }

        crc = Crc32C.Update(crc, buffer.WrittenSpan);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.GetSpan(4), Crc32C.Finish(crc));
        buffer.Advance(4);
        await writer.Invoke(buffer.WrittenMemory, token).ConfigureAwait(false);
        Log.SnapshotWritten(_logger, revision, keys.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);

        async ValueTask<int> WriteChunkAsync()
        {
            StoredValue?[] values = await _faster.ReadManyAsync(chunk).ConfigureAwait(false);
            int count = 0;
            for (int i = 0; i < chunk.Count; i++)
            {
                if (values[i] is not { } value)
                {
                    continue;
                }

                count++;
                string key = chunk[i];
                int keyBytes = StoreFileFormat.StrictUtf8.GetByteCount(key);
                Span<byte> span = buffer.GetSpan(4 + keyBytes + 4 + value.Value.Length + 16);
                BinaryPrimitives.WriteInt32LittleEndian(span, keyBytes);
                StoreFileFormat.StrictUtf8.GetBytes(key, span[4..]);
                int offset = 4 + keyBytes;
                BinaryPrimitives.WriteInt32LittleEndian(span[offset..], value.Value.Length);
                value.Value.CopyTo(span[(offset + 4)..]);
                offset += 4 + value.Value.Length;
                BinaryPrimitives.WriteInt64LittleEndian(span[offset..], value.ModRevision);
                BinaryPrimitives.WriteInt64LittleEndian(span[(offset + 8)..], value.CreateRevision);
                buffer.Advance(offset + 16);
                if (buffer.WrittenCount >= 1024 * 1024)
                {
                    crc = Crc32C.Update(crc, buffer.WrittenSpan);
                    await writer.Invoke(buffer.WrittenMemory, token).ConfigureAwait(false);
                    buffer.ResetWrittenCount();
                }
            }

            chunk.Clear();
            return count;
        }
    }

    /// <summary>
    /// Loads a snapshot file into FASTER: on start when the FASTER checkpoint is older than the newest snapshot file (or
    /// unusable), and when the leader installs a snapshot on this follower. Skipped when FASTER already covers it.
    /// </summary>
    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        try
        {
            await RestoreCoreAsync(snapshotFile, token).ConfigureAwait(false);
        }
        catch (Exception e) when (RecordFault($"loading snapshot '{snapshotFile.Name}'", _stateIndex, e))
        {
            throw;
        }
    }

    private async ValueTask RestoreCoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        long snapshotIndex = ParseSnapshotIndex(snapshotFile);
        if (snapshotIndex <= _stateIndex)
        {
            Log.SnapshotNotNeeded(_logger, snapshotFile.Name, _stateIndex);
            return;
        }

        if (!_started)
        {
            // On start the newest snapshot file is ahead of FASTER: its checkpoint is missing, older or was unusable.
            // Older is expected: checkpoints are written in the background, so the member may have stopped while the
            // checkpoint of that snapshot was written (or deferred behind the previous one).
            if (_stateIndex > 0 && _faster.RecoveryProblem is null)
            {
                Log.CheckpointOlderThanSnapshot(_logger, snapshotFile.FullName, _stateIndex);
            }
            else
            {
                Log.CheckpointBehindSnapshot(_logger, snapshotFile.FullName, _stateIndex, _faster.RecoveryProblem ?? $"no FASTER checkpoint in '{_faster.Directory}' covers Raft index {snapshotIndex}");
            }
        }

        byte[] bytes = await File.ReadAllBytesAsync(snapshotFile.FullName, token).ConfigureAwait(false);
        (List<StoreEntry> entries, long revision) = Decode(bytes, snapshotFile.FullName);
        await _applyGate.WaitAsync(token).ConfigureAwait(false);
        Interlocked.Increment(ref _sequence);
        try
        {
            var keep = new HashSet<string>(entries.Count, StringComparer.Ordinal);
            foreach (StoreEntry entry in entries)
            {
                keep.Add(entry.Key);
                _faster.Upsert(entry.Key, new StoredValue(entry.Value.ToArray(), entry.ModRevision, entry.CreateRevision));
            }

            foreach (string key in _keys)
            {
                if (!keep.Contains(key))
                {
                    _faster.Delete(key);
                }
            }

            _keys = ImmutableSortedSet.CreateRange(StringComparer.Ordinal, keep);
            Volatile.Write(ref _revision, revision);
            _stateIndex = snapshotIndex;
            _watchHub.Reset(revision);
        }
        finally
        {
            Interlocked.Increment(ref _sequence);
            _applyGate.Release();
        }

        await _faster.CheckpointAsync(new CheckpointCookie(snapshotIndex, revision), token).ConfigureAwait(false);
        Signal();
        Log.SnapshotRestored(_logger, snapshotFile.Name, revision, entries.Count);
    }

    private static long ParseSnapshotIndex(FileInfo file)
    {
        // DotNext names snapshot files "{index}-{term}".
        int dash = file.Name.IndexOf('-', StringComparison.Ordinal);
        return dash > 0 && long.TryParse(file.Name.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long index)
            ? index
            : throw new StoreCorruptedException(file.FullName, 0, "the snapshot file name is not '{index}-{term}'");
    }

    private static (List<StoreEntry> Entries, long Revision) Decode(byte[] bytes, string path)
    {
        ReadOnlySpan<byte> span = bytes;
        if (span.Length < 28 || BinaryPrimitives.ReadUInt32LittleEndian(span) != SnapshotMagic)
        {
            throw new StoreCorruptedException(path, 0, "not a WarpGrid Raft snapshot (bad magic number or too short)");
        }

        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(span[^4..]);
        if (Crc32C.Compute(span[..^4]) != stored)
        {
            throw new StoreCorruptedException(path, span.Length - 4, "the snapshot checksum does not match its content");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(span[4..]);
        if (version != SnapshotFormatVersion)
        {
            throw new StoreCorruptedException(path, 4, $"unsupported snapshot format version {version}");
        }

        long revision = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
        long count = BinaryPrimitives.ReadInt64LittleEndian(span[16..]);
        var entries = new List<StoreEntry>((int)Math.Min(count, 1 << 20));
        int offset = 24;
        for (long i = 0; i < count; i++)
        {
            int keyBytes = BinaryPrimitives.ReadInt32LittleEndian(span[offset..]);
            string key = StoreFileFormat.StrictUtf8.GetString(span.Slice(offset + 4, keyBytes));
            offset += 4 + keyBytes;
            int valueBytes = BinaryPrimitives.ReadInt32LittleEndian(span[offset..]);
            byte[] value = span.Slice(offset + 4, valueBytes).ToArray();
            offset += 4 + valueBytes;
            long mod = BinaryPrimitives.ReadInt64LittleEndian(span[offset..]);
            long create = BinaryPrimitives.ReadInt64LittleEndian(span[(offset + 8)..]);
            offset += 16;
            entries.Add(new StoreEntry(key, value, mod, create));
        }

        return (entries, revision);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        await _faster.WaitForCheckpointAsync().ConfigureAwait(false); // a clean stop leaves a finished checkpoint
        _watchHub.Close();
        _faster.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3207, Level = LogLevel.Critical, Message = "Raft store state machine failed {What} at Raft index {Index}; this member stops applying entries until it is restarted.")]
        public static partial void StateMachineFailed(ILogger logger, string what, long index, Exception exception);

        [LoggerMessage(EventId = 3200, Level = LogLevel.Debug, Message = "Raft store snapshot written at revision {Revision} with {KeyCount} keys in {Milliseconds:F0} ms (the applier waits for it).")]
        public static partial void SnapshotWritten(ILogger logger, long revision, int keyCount, double milliseconds);

        [LoggerMessage(EventId = 3201, Level = LogLevel.Information, Message = "Raft store state restored from snapshot {Snapshot}: revision {Revision}, {KeyCount} keys.")]
        public static partial void SnapshotRestored(ILogger logger, string snapshot, long revision, int keyCount);

        [LoggerMessage(EventId = 3202, Level = LogLevel.Information, Message = "Raft store state recovered from the FASTER checkpoint in {Directory}: Raft index {Index}, revision {Revision}, {KeyCount} keys; the WAL replays the entries after it.")]
        public static partial void CheckpointRecovered(ILogger logger, string directory, long index, long revision, int keyCount);

        [LoggerMessage(EventId = 3203, Level = LogLevel.Debug, Message = "FASTER checkpoint taken at Raft index {Index}, revision {Revision}, written in the background in {Milliseconds:F0} ms.")]
        public static partial void CheckpointTaken(ILogger logger, long index, long revision, double milliseconds);

        [LoggerMessage(EventId = 3209, Level = LogLevel.Debug, Message = "Raft store applier resumed at Raft index {Index} {Milliseconds:F1} ms after it requested a snapshot file.")]
        public static partial void AppliedAfterSnapshot(ILogger logger, long index, double milliseconds);

        [LoggerMessage(EventId = 3214, Level = LogLevel.Debug, Message = "FASTER checkpoint at Raft index {Index} started; the applier waited {Milliseconds:F3} ms for its version switch.")]
        public static partial void CheckpointStarted(ILogger logger, long index, double milliseconds);

        [LoggerMessage(EventId = 3208, Level = LogLevel.Debug, Message = "FASTER checkpoint at Raft index {Index} deferred: the previous checkpoint is still being written.")]
        public static partial void CheckpointDeferred(ILogger logger, long index);

        [LoggerMessage(EventId = 3206, Level = LogLevel.Warning, Message = "Raft store state rebuilt from snapshot {Snapshot} (the FASTER state covered Raft index {Index}): {Cause}.")]
        public static partial void CheckpointBehindSnapshot(ILogger logger, string snapshot, long index, string cause);

        [LoggerMessage(EventId = 3213, Level = LogLevel.Information, Message = "Raft store state loaded from snapshot {Snapshot}: the newest FASTER checkpoint (Raft index {Index}) is older (the member stopped while a checkpoint was written in the background).")]
        public static partial void CheckpointOlderThanSnapshot(ILogger logger, string snapshot, long index);

        [LoggerMessage(EventId = 3204, Level = LogLevel.Debug, Message = "Raft snapshot {Snapshot} not loaded: the FASTER state already covers Raft index {Index}.")]
        public static partial void SnapshotNotNeeded(ILogger logger, string snapshot, long index);
    }
}

/// <summary>Passed as the log entry's context on the leader, so the state machine hands back each operation's outcome.</summary>
internal sealed class AppliedBatch
{
    public KvResult[]? Results { get; private set; }

    public void SetResults(KvResult[] results) => Results = results;
}
