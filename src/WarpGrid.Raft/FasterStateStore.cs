using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using FASTER.core;
using WarpGrid.Core.Storage;
using Microsoft.Extensions.Logging;

namespace WarpGrid.Raft;

/// <summary>One key's value and revisions as stored in FASTER. Immutable: FASTER swaps the reference on update.</summary>
internal sealed class StoredValue(byte[] value, long modRevision, long createRevision)
{
    public byte[] Value { get; } = value;

    public long ModRevision { get; } = modRevision;

    public long CreateRevision { get; } = createRevision;
}

/// <summary>What a FASTER checkpoint says it covers: the Raft index and the store revision (its commit cookie).</summary>
internal readonly record struct CheckpointCookie(long RaftIndex, long Revision)
{
    private const uint Magic = 0x43524757; // "WGRC"
    private const int Length = 24;

    public byte[] Encode()
    {
        byte[] bytes = new byte[Length + 4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), 1);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8), RaftIndex);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(16), Revision);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Length), Crc32C.Compute(bytes.AsSpan(0, Length)));
        return bytes;
    }

    public static bool TryDecode(byte[]? bytes, out CheckpointCookie cookie)
    {
        cookie = default;
        if (bytes is not { Length: Length + 4 }
            || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic
            || BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)) != 1
            || BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(Length)) != Crc32C.Compute(bytes.AsSpan(0, Length)))
        {
            return false;
        }

        cookie = new CheckpointCookie(BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(8)), BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(16)));
        return cookie.RaftIndex >= 0 && cookie.Revision >= 0;
    }
}

/// <summary>
/// The replicated keys in a FASTER key-value store (<c>FasterKV&lt;string, StoredValue&gt;</c>, hybrid log plus object
/// log under the member's data directory). One write session belongs to the Raft applier (never concurrent); readers rent
/// sessions from a pool (a FASTER session is not thread-safe, a pooled one is used by one reader at a time). The store is
/// durable only as of its last checkpoint; each checkpoint carries the Raft index and revision in its commit cookie.
/// </summary>
internal sealed partial class FasterStateStore : IDisposable
{
    private const int MaxPooledSessions = 64;

    private readonly FasterKV<string, StoredValue> _kv;
    private readonly FasterKVSettings<string, StoredValue> _settings;
    private readonly ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> _writer;
    private readonly ConcurrentBag<ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>>> _readers = [];
    private readonly long _compactAfterBytes;
    private Task _checkpoint = Task.CompletedTask; // the checkpoint in progress (set by the applier only)
    private volatile bool _switching;
    private long _versionSwitchWaits;
    private readonly Lock _checkpointLock = new();
    private CheckpointCookie _lastCheckpoint;
    private int _pooled;
    private int _active;
    private volatile bool _disposed;

    private FasterStateStore(string directory, FasterKVSettings<string, StoredValue> settings, long compactAfterBytes)
    {
        _compactAfterBytes = compactAfterBytes;
        Directory = directory;
        _settings = settings;
        _kv = new FasterKV<string, StoredValue>(settings);
        _writer = NewSession();
    }

    /// <summary>The directory holding the hybrid log, the object log and the checkpoints.</summary>
    public string Directory { get; }

    /// <summary>What the recovered checkpoint covers (zero when the store started empty).</summary>
    public CheckpointCookie Recovered { get; private set; }

    /// <summary>The log address compaction last reached (0 before any compaction).</summary>
    public long CompactedUntil { get; private set; }

    /// <summary>The hybrid log's begin address (records before it were compacted away).</summary>
    public long BeginAddress => _kv.Log.BeginAddress;

    /// <summary>Why the previous state could not be recovered and was set aside, or null.</summary>
    public string? RecoveryProblem { get; private set; }

    /// <summary>
    /// Opens the store in <paramref name="directory"/> and recovers its newest checkpoint. A checkpoint that cannot be
    /// recovered (missing, corrupted, without a valid cookie) is reported and its directory moved aside (never deleted):
    /// the store then starts empty and the caller rebuilds it from the newest Raft snapshot and the WAL.
    /// </summary>
    public static FasterStateStore Open(string directory, ILogger logger, int memoryBits = 22, int pageBits = 16)
        => Open(directory, logger, memoryBits, pageBits, compactAfterBytes: 2L << memoryBits);

    /// <inheritdoc cref="Open(string, ILogger, int, int)"/>
    public static FasterStateStore Open(string directory, ILogger logger, int memoryBits, int pageBits, long compactAfterBytes)
    {
        System.IO.Directory.CreateDirectory(directory);
        string checkpoints = Path.Combine(directory, "checkpoints");
        bool hasCheckpoint = System.IO.Directory.Exists(checkpoints) && System.IO.Directory.EnumerateFiles(checkpoints, "*", SearchOption.AllDirectories).Any();
        if (!hasCheckpoint)
        {
            // Nothing was checkpointed yet (fewer entries than the snapshot interval, or a new member): whatever the log
            // holds is not durable state, and the WAL (or a snapshot file) rebuilds it. Start from an empty log.
            foreach (string file in System.IO.Directory.EnumerateFiles(directory, "hlog.*"))
            {
                File.Delete(file);
            }

            return new FasterStateStore(directory, CreateSettings(directory, memoryBits, pageBits), compactAfterBytes);
        }

        FasterStateStore? store = null;
        string problem;
        try
        {
            store = new FasterStateStore(directory, CreateSettings(directory, memoryBits, pageBits), compactAfterBytes);
            store._kv.Recover();
            if (CheckpointCookie.TryDecode(store._kv.RecoveredCommitCookie, out CheckpointCookie cookie))
            {
                store.Recovered = cookie;
                return store;
            }

            problem = $"the newest FASTER checkpoint in '{checkpoints}' has no valid WarpGrid commit cookie (Raft index and revision)";
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            problem = $"the FASTER checkpoint in '{checkpoints}' could not be recovered ({ex.GetType().Name}: {ex.Message})";
        }

        store?.Dispose();
        string aside = directory + ".unrecoverable-" + TimeProvider.System.GetUtcNow().ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture);
        System.IO.Directory.Move(directory, aside);
        Log.Unrecoverable(logger, problem, aside);
        System.IO.Directory.CreateDirectory(directory);
        return new FasterStateStore(directory, CreateSettings(directory, memoryBits, pageBits), compactAfterBytes) { RecoveryProblem = $"{problem}; moved to '{aside}'" };
    }

    private static FasterKVSettings<string, StoredValue> CreateSettings(string directory, int memoryBits, int pageBits) => new()
    {
        LogDevice = Devices.CreateLogDevice(Path.Combine(directory, "hlog.log"), recoverDevice: true),
        ObjectLogDevice = Devices.CreateLogDevice(Path.Combine(directory, "hlog.obj.log"), recoverDevice: true),
        CheckpointDir = Path.Combine(directory, "checkpoints"),
        RemoveOutdatedCheckpoints = true,
        IndexSize = 1L << 20,     // 16k hash buckets of 8 entries (overflow buckets beyond): control-plane key counts
        PageSize = 1L << pageBits, // records of the object allocator are 24 bytes (values live in the object log)
        MemorySize = 1L << memoryBits, // default 4 MiB: ~170k records in memory; older ones are read back from disk
        SegmentSize = 1L << 26,
        KeySerializer = () => new KeySerializer(),
        ValueSerializer = () => new ValueSerializer(),
    };

    private ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> NewSession() =>
        _kv.For(new SimpleFunctions<string, StoredValue>()).NewSession<SimpleFunctions<string, StoredValue>>();

    /// <summary>Reads a key with the applier's session (only from the applier).</summary>
    public ValueTask<StoredValue?> ReadForApplyAsync(string key) => ReadAsync(_writer, key);

    /// <summary>Writes a key (only from the applier).</summary>
    public void Upsert(string key, StoredValue value)
    {
        ThrowIfSwitching();
        Status status = _writer.Upsert(key, value);
        if (status.IsFaulted)
        {
            throw new IOException($"FASTER refused the write of '{key}' ({status}).");
        }
    }

    /// <summary>Deletes a key (only from the applier).</summary>
    public void Delete(string key)
    {
        ThrowIfSwitching();
        Status status = _writer.Delete(key);
        if (status.IsFaulted)
        {
            throw new IOException($"FASTER refused the delete of '{key}' ({status}).");
        }
    }

    /// <summary>Reads a key from any thread, with a pooled session.</summary>
    public async ValueTask<StoredValue?> ReadAsync(string key)
    {
        Enter();
        ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>>? session = null;
        try
        {
            session = Rent();
            return await ReadAsync(session, key).ConfigureAwait(false);
        }
        finally
        {
            Return(session);
            Exit();
        }
    }

    /// <summary>Reads keys from any thread, with one pooled session; a missing key reads as null.</summary>
    public async ValueTask<StoredValue?[]> ReadManyAsync(IReadOnlyList<string> keys)
    {
        var values = new StoredValue?[keys.Count];
        if (keys.Count == 0)
        {
            return values;
        }

        Enter();
        ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>>? session = null;
        try
        {
            session = Rent();
            for (int i = 0; i < keys.Count; i++)
            {
                values[i] = await ReadAsync(session, keys[i]).ConfigureAwait(false);
            }

            return values;
        }
        finally
        {
            Return(session);
            Exit();
        }
    }

    private ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> Rent()
    {
        if (_readers.TryTake(out var pooled))
        {
            Interlocked.Decrement(ref _pooled);
            return pooled;
        }

        return NewSession();
    }

    private void Return(ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>>? session)
    {
        if (session is null)
        {
            return;
        }

        if (!_disposed && Interlocked.Increment(ref _pooled) <= MaxPooledSessions)
        {
            _readers.Add(session);
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
            session.Dispose();
        }
    }

    private static ValueTask<StoredValue?> ReadAsync(ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> session, string key)
    {
        // In-memory records answer synchronously; a record on disk goes pending and completes asynchronously.
        (Status status, StoredValue output) = session.Read(key);
        return status.IsPending ? CompletePendingReadAsync(session, key) : ValueTask.FromResult(Result(status, output, key));
    }

    private static async ValueTask<StoredValue?> CompletePendingReadAsync(ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> session, string key)
    {
        using CompletedOutputIterator<string, StoredValue, StoredValue, StoredValue, Empty> outputs = await session.CompletePendingWithOutputsAsync().ConfigureAwait(false);
        StoredValue? found = null;
        bool completed = false;
        while (outputs.Next())
        {
            ref CompletedOutput<string, StoredValue, StoredValue, StoredValue, Empty> output = ref outputs.Current;
            if (output.Key == key)
            {
                found = Result(output.Status, output.Output, key);
                completed = true;
            }
        }

        return completed ? found : throw new IOException($"FASTER did not complete the read of '{key}' from disk.");
    }

    private static StoredValue? Result(Status status, StoredValue output, string key) =>
        status.IsFaulted ? throw new IOException($"FASTER could not read '{key}' ({status}).")
        : status.Found ? output
        : null;

    /// <summary>Every live key and value (used to rebuild the ordered key index after recovery).</summary>
    public List<(string Key, StoredValue Value)> ReadAll()
    {
        var all = new List<(string, StoredValue)>();
        using IFasterScanIterator<string, StoredValue> iterator = _writer.Iterate();
        while (iterator.GetNext(out RecordInfo _))
        {
            all.Add((iterator.GetKey(), iterator.GetValue()));
        }

        return all;
    }

    /// <summary>Whether a checkpoint started by <see cref="TryBeginCheckpointAsync"/> is still being written.</summary>
    public bool CheckpointInProgress => !_checkpoint.IsCompleted;

    /// <summary>What the newest checkpoint this process completed covers (default before the first one).</summary>
    public CheckpointCookie LastCheckpoint
    {
        get
        {
            lock (_checkpointLock)
            {
                return _lastCheckpoint;
            }
        }
    }

    /// <summary>How long the applier waited for the last checkpoint's version switch (for logs and measurements).</summary>
    public TimeSpan LastVersionSwitchDuration { get; private set; }

    /// <summary>How long the last completed checkpoint took from its start to durable (for logs and measurements).</summary>
    public TimeSpan LastCheckpointDuration { get; private set; }

    /// <summary>
    /// Test seam: awaited by the background part of a checkpoint before it waits for FASTER to finish, so a test can
    /// keep a checkpoint in progress for as long as it likes. Null outside tests.
    /// </summary>
    internal Func<CheckpointCookie, Task>? BackgroundCheckpointGate { get; set; }

    /// <summary>
    /// Starts a full (index and hybrid log, Snapshot) checkpoint carrying <paramref name="cookie"/> and returns once its
    /// version boundary is established; the flush and the metadata commit then run in the background (the returned task
    /// completes once the checkpoint is durable, then compacts the log when it has grown). Returns null, starting nothing,
    /// while an earlier checkpoint is still running: one checkpoint at a time. Only from the applier, between two entries
    /// (no write of the writer session is in progress), with <paramref name="cookie"/> naming the state as of now.
    /// </summary>
    /// <remarks>
    /// FASTER's checkpoint (CPR) captures version v: every operation a session performed before it moved to version v+1,
    /// none after. Sessions move on their own refreshes, i.e. on any operation, so without care the writer could cross
    /// in the middle of a log entry or a few entries later, and the cookie would not describe the checkpoint. Here the
    /// applier, which owns the only writer session, starts the checkpoint and then refreshes its session until the
    /// session is in version v+1 before it returns (before the next entry is applied): every write up to the cookie's
    /// Raft index is in version v (the checkpoint) and every later write is in v+1 (FASTER undoes those on recovery).
    /// Readers never write. FASTER writes the cookie with the checkpoint's metadata at the end of the checkpoint, which is
    /// why no other checkpoint (and no other cookie) may start before this one has finished.
    /// </remarks>
    public async ValueTask<Task?> TryBeginCheckpointAsync(CheckpointCookie cookie, CancellationToken cancellationToken)
    {
        if (!_checkpoint.IsCompleted)
        {
            return null;
        }

        _writer.CompletePending(wait: true); // nothing of the applier's is pending between entries; made sure here
        long version = _kv.CurrentVersion;
        _kv.CommitCookie = cookie.Encode();
        if (!_kv.TryInitiateFullCheckpoint(out Guid _, CheckpointType.Snapshot))
        {
            return null; // FASTER's previous state machine is in its last instant (it completed at REST): next entry
        }

        long started = Stopwatch.GetTimestamp();
        _switching = true; // no write may slip into version v if the wait below is abandoned (the member is stopping)
        Task completion = Task.Run(() => CompleteCheckpointAsync(cookie, version, started));
        _checkpoint = completion;
        await WaitForVersionSwitchAsync(version + 1, cancellationToken).ConfigureAwait(false);
        _switching = false;
        LastVersionSwitchDuration = Stopwatch.GetElapsedTime(started);
        return completion;
    }

    /// <summary>How many times the applier refreshed its session again while waiting for a checkpoint's version switch.</summary>
    public long VersionSwitchWaits => Interlocked.Read(ref _versionSwitchWaits);

    /// <summary>
    /// Test seam: enters FASTER's epoch on the calling thread with a session of its own and stays inside (as a reader in
    /// the middle of an operation would) until the result is disposed, on the same thread.
    /// </summary>
    internal IDisposable EnterEpochForTest()
    {
        ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> session = NewSession();
        session.UnsafeContext.BeginUnsafe();
        return new EpochHold(session);
    }

    private sealed class EpochHold(ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> session) : IDisposable
    {
        public void Dispose()
        {
            session.UnsafeContext.EndUnsafe();
            session.Dispose();
        }
    }

    /// <summary>Completes once the checkpoint in progress (if any) has finished; its failure was reported by its task.</summary>
    public Task WaitForCheckpointAsync() => _checkpoint.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// Takes a checkpoint carrying <paramref name="cookie"/> and returns once it is durable (after the one in progress,
    /// if any). Only from the applier (no write is in progress). Used after a snapshot file is loaded, and by tests.
    /// </summary>
    public async ValueTask CheckpointAsync(CheckpointCookie cookie, CancellationToken cancellationToken)
    {
        while (true)
        {
            await WaitForCheckpointAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            if (await TryBeginCheckpointAsync(cookie, cancellationToken).ConfigureAwait(false) is { } completion)
            {
                await completion.WaitAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            await Task.Yield();
        }
    }

    private async ValueTask WaitForVersionSwitchAsync(long target, CancellationToken cancellationToken)
    {
        // The global state moves PREPARE -> IN_PROGRESS (v+1) once every thread inside an operation has seen PREPARE;
        // readers finish their operation within microseconds (a read from disk goes pending outside the epoch).
        for (int attempt = 0; ; attempt++)
        {
            _writer.Refresh();
            if (_writer.Version >= target)
            {
                return;
            }

            Interlocked.Increment(ref _versionSwitchWaits);
            cancellationToken.ThrowIfCancellationRequested();
            if (attempt < 64)
            {
                await Task.Yield();
            }
            else
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task CompleteCheckpointAsync(CheckpointCookie cookie, long version, long started)
    {
        if (BackgroundCheckpointGate is { } gate)
        {
            await gate(cookie).ConfigureAwait(false);
        }

        await _kv.CompleteCheckpointAsync().ConfigureAwait(false);
        if (_kv.LastCheckpointedVersion != version)
        {
            throw new IOException($"The FASTER checkpoint of version {version} in '{Directory}' did not commit (the last committed version is {_kv.LastCheckpointedVersion}).");
        }

        LastCheckpointDuration = Stopwatch.GetElapsedTime(started);
        lock (_checkpointLock)
        {
            _lastCheckpoint = cookie;
        }

        // Log compaction, after the checkpoint and concurrently with the applier (FASTER's compaction uses its own
        // session and copies a live record to the tail only when no newer record of its key exists): once the
        // immutable part of the hybrid log outgrows the threshold, live records are copied to the tail and the begin
        // address moves in memory; the next checkpoint makes the shift durable and FASTER then drops the old segments.
        long begin = _kv.Log.BeginAddress;
        long until = _kv.Log.SafeReadOnlyAddress;
        if (until - begin > _compactAfterBytes && !_disposed)
        {
            using ClientSession<string, StoredValue, StoredValue, StoredValue, Empty, SimpleFunctions<string, StoredValue>> session = NewSession();
            CompactedUntil = session.Compact(until, CompactionType.Scan);
        }
    }

    private void ThrowIfSwitching()
    {
        if (_switching)
        {
            throw new InvalidOperationException("A FASTER checkpoint's version switch was abandoned; no write may follow until the member restarts.");
        }
    }

    private void Enter()
    {
        Interlocked.Increment(ref _active);
        if (_disposed)
        {
            Interlocked.Decrement(ref _active);
            throw new ObjectDisposedException(nameof(FasterStateStore));
        }
    }

    private void Exit() => Interlocked.Decrement(ref _active);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;

        // A checkpoint in progress finishes first (it writes files under the store and uses its memory).
        try
        {
            _checkpoint.Wait(TimeSpan.FromSeconds(30));
        }
        catch (AggregateException)
        {
            // Reported by the task's owner (the state machine records it as a fault).
        }


        // Readers in flight finish before the store's memory goes away.
        SpinWait.SpinUntil(() => Volatile.Read(ref _active) == 0, TimeSpan.FromSeconds(10));
        while (_readers.TryTake(out var session))
        {
            session.Dispose();
        }

        _writer.Dispose();
        _kv.Dispose();
        _settings.LogDevice.Dispose();
        _settings.ObjectLogDevice.Dispose();
    }

    private sealed class KeySerializer : BinaryObjectSerializer<string>
    {
        public override void Serialize(ref string obj) => writer.Write(obj);

        public override void Deserialize(out string obj) => obj = reader.ReadString();
    }

    private sealed class ValueSerializer : BinaryObjectSerializer<StoredValue>
    {
        public override void Serialize(ref StoredValue obj)
        {
            if (obj is null)
            {
                writer.Write(-1);
                return;
            }

            writer.Write(obj.Value.Length);
            writer.Write(obj.Value);
            writer.Write(obj.ModRevision);
            writer.Write(obj.CreateRevision);
        }

        public override void Deserialize(out StoredValue obj)
        {
            int length = reader.ReadInt32();
            if (length < 0)
            {
                obj = null!;
                return;
            }

            byte[] value = reader.ReadBytes(length);
            if (value.Length != length)
            {
                throw new InvalidDataException($"A FASTER object-log value is truncated ({value.Length} of {length} bytes).");
            }

            obj = new StoredValue(value, reader.ReadInt64(), reader.ReadInt64());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3205, Level = LogLevel.Error, Message = "Raft store state could not be recovered: {Problem}. The directory was moved to {Aside}; the state is rebuilt from the newest Raft snapshot and the WAL.")]
        public static partial void Unrecoverable(ILogger logger, string problem, string aside);
    }
}
