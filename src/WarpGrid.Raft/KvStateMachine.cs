using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Storage;

namespace WarpGrid.Raft;

/// <summary>
/// The replicated state: keys with their revisions, kept in an immutable sorted index (lock-free reads, ordered
/// prefix lists) and snapshotted to a checksummed file every <c>SnapshotInterval</c> log entries. The snapshot file
/// name carries the Raft index it covers; on start the newest snapshot is loaded and the WAL replays the entries after it.
/// </summary>
internal sealed partial class KvStateMachine : SimpleStateMachine
{
    private const uint SnapshotMagic = 0x53524757; // "WGRS"
    private const uint SnapshotFormatVersion = 1;

    private readonly int _snapshotInterval;
    private readonly ILogger _logger;
    private readonly WatchHub _watchHub;
    private volatile KvState _state = KvState.Empty;
    private volatile TaskCompletionSource _applied = NewSignal();
    private KvState? _persisting;
    private int _entriesSinceSnapshot;
    private long _lastAppliedIndex;

    public KvStateMachine(DirectoryInfo location, int snapshotInterval, int watchHistoryCapacity, ILogger logger)
        : base(location)
    {
        _snapshotInterval = snapshotInterval;
        _logger = logger;
        _watchHub = new WatchHub(watchHistoryCapacity, 64L * 1024 * 1024, 1024, 0);
    }

    public KvState State => _state;

    public WatchHub Watches => _watchHub;

    public long LastAppliedIndex => Volatile.Read(ref _lastAppliedIndex);

    /// <summary>Completes once the applied revision reaches <paramref name="revision"/>.</summary>
    public async ValueTask WaitForRevisionAsync(long revision, CancellationToken cancellationToken)
    {
        while (true)
        {
            TaskCompletionSource signal = _applied;
            if (_state.Revision >= revision)
            {
                return;
            }

            await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    protected override ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        Volatile.Write(ref _lastAppliedIndex, entry.Index);
        if (!entry.IsConfiguration && entry.TryGetPayload(out ReadOnlySequence<byte> payload) && payload.Length > 0)
        {
            List<KvOp> ops = KvCommand.Decode(payload);
            KvResult[] results = Apply(ops);
            (entry.Context as AppliedBatch)?.SetResults(results);
        }

        Signal();
        if (++_entriesSinceSnapshot >= _snapshotInterval)
        {
            _entriesSinceSnapshot = 0;
            _persisting = _state;
            return ValueTask.FromResult(true);
        }

        return ValueTask.FromResult(false);
    }

    private KvResult[] Apply(List<KvOp> ops)
    {
        KvState state = _state;
        ImmutableSortedDictionary<string, StoreEntry>.Builder entries = state.Entries.ToBuilder();
        long revision = state.Revision;
        var results = new KvResult[ops.Count];
        var events = new List<StoreEvent>(ops.Count);
        for (int i = 0; i < ops.Count; i++)
        {
            KvOp op = ops[i];
            entries.TryGetValue(op.Key, out StoreEntry? current);
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
                entries.Remove(op.Key);
                events.Add(new StoreEvent(StoreEventKind.Delete, new StoreEntry(op.Key, ReadOnlyMemory<byte>.Empty, revision, 0)));
            }
            else
            {
                revision++;
                var entry = new StoreEntry(op.Key, op.Value, revision, current?.CreateRevision ?? revision);
                entries[op.Key] = entry;
                events.Add(new StoreEvent(StoreEventKind.Put, entry));
            }

            results[i] = new KvResult(KvOutcome.Done, revision);
        }

        if (events.Count > 0)
        {
            _state = new KvState(entries.ToImmutable(), revision);
            _watchHub.Publish(events);
        }

        return results;
    }

    private void Signal() => Interlocked.Exchange(ref _applied, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token)
    {
        KvState state = _persisting ?? _state;
        _persisting = null;
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        uint crc = Crc32C.Initial;
        Span<byte> header = buffer.GetSpan(24);
        BinaryPrimitives.WriteUInt32LittleEndian(header, SnapshotMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], SnapshotFormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], state.Revision);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], state.Entries.Count);
        buffer.Advance(24);
        foreach (StoreEntry entry in state.Entries.Values)
        {
            int keyBytes = StoreFileFormat.StrictUtf8.GetByteCount(entry.Key);
            Span<byte> span = buffer.GetSpan(4 + keyBytes + 4 + entry.Value.Length + 16);
            BinaryPrimitives.WriteInt32LittleEndian(span, keyBytes);
            StoreFileFormat.StrictUtf8.GetBytes(entry.Key, span[4..]);
            int offset = 4 + keyBytes;
            BinaryPrimitives.WriteInt32LittleEndian(span[offset..], entry.Value.Length);
            entry.Value.Span.CopyTo(span[(offset + 4)..]);
            offset += 4 + entry.Value.Length;
            BinaryPrimitives.WriteInt64LittleEndian(span[offset..], entry.ModRevision);
            BinaryPrimitives.WriteInt64LittleEndian(span[(offset + 8)..], entry.CreateRevision);
            buffer.Advance(offset + 16);
            if (buffer.WrittenCount >= 1024 * 1024)
            {
                crc = Crc32C.Update(crc, buffer.WrittenSpan);
                await writer.Invoke(buffer.WrittenMemory, token).ConfigureAwait(false);
                buffer.ResetWrittenCount();
            }
        }

        crc = Crc32C.Update(crc, buffer.WrittenSpan);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.GetSpan(4), Crc32C.Finish(crc));
        buffer.Advance(4);
        await writer.Invoke(buffer.WrittenMemory, token).ConfigureAwait(false);
        Log.SnapshotWritten(_logger, state.Revision, state.Entries.Count);
    }

    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        byte[] bytes = await File.ReadAllBytesAsync(snapshotFile.FullName, token).ConfigureAwait(false);
        KvState state = Decode(bytes, snapshotFile.FullName);
        _state = state;
        _watchHub.Reset(state.Revision);
        Signal();
        Log.SnapshotRestored(_logger, snapshotFile.Name, state.Revision, state.Entries.Count);
    }

    private static KvState Decode(byte[] bytes, string path)
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
        var entries = ImmutableSortedDictionary.CreateBuilder<string, StoreEntry>(StringComparer.Ordinal);
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
            entries[key] = new StoreEntry(key, value, mod, create);
        }

        return new KvState(entries.ToImmutable(), revision);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        _watchHub.Close();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3200, Level = LogLevel.Debug, Message = "Raft store snapshot written at revision {Revision} with {KeyCount} keys.")]
        public static partial void SnapshotWritten(ILogger logger, long revision, int keyCount);

        [LoggerMessage(EventId = 3201, Level = LogLevel.Information, Message = "Raft store state restored from snapshot {Snapshot}: revision {Revision}, {KeyCount} keys.")]
        public static partial void SnapshotRestored(ILogger logger, string snapshot, long revision, int keyCount);
    }
}

/// <summary>An immutable view of the replicated keys at one revision.</summary>
internal sealed record KvState(ImmutableSortedDictionary<string, StoreEntry> Entries, long Revision)
{
    public static readonly KvState Empty = new(ImmutableSortedDictionary.Create<string, StoreEntry>(StringComparer.Ordinal), 0);
}

/// <summary>Passed as the log entry's context on the leader, so the state machine hands back each operation's outcome.</summary>
internal sealed class AppliedBatch
{
    public KvResult[]? Results { get; private set; }

    public void SetResults(KvResult[] results) => Results = results;
}
