using System.Buffers.Binary;
using System.Collections.Concurrent;
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
        Status status = _writer.Upsert(key, value);
        if (status.IsFaulted)
        {
            throw new IOException($"FASTER refused the write of '{key}' ({status}).");
        }
    }

    /// <summary>Deletes a key (only from the applier).</summary>
    public void Delete(string key)
    {
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

    /// <summary>
    /// Takes a full (index and hybrid log) checkpoint carrying <paramref name="cookie"/>; returns once it is durable.
    /// Only from the applier (no write is in progress).
    /// </summary>
    public async ValueTask CheckpointAsync(CheckpointCookie cookie, CancellationToken cancellationToken)
    {
        _writer.CompletePending(wait: true);

        // Log compaction: once the immutable part of the hybrid log outgrows the threshold, live records are copied to
        // the tail and the begin address moves; this checkpoint makes the shift durable and FASTER drops the old segments.
        long begin = _kv.Log.BeginAddress;
        long until = _kv.Log.SafeReadOnlyAddress;
        if (until - begin > _compactAfterBytes)
        {
            CompactedUntil = _writer.Compact(until, CompactionType.Scan);
        }

        _kv.CommitCookie = cookie.Encode();
        (bool started, Guid token) = await _kv.TakeFullCheckpointAsync(CheckpointType.Snapshot, cancellationToken).ConfigureAwait(false);
        if (!started)
        {
            throw new IOException($"A FASTER checkpoint in '{Directory}' could not start (another checkpoint is in progress).");
        }

        _ = token;
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
