using System.Buffers;
using System.Buffers.Binary;
using WarpGrid.Core.Storage;

namespace WarpGrid.Raft;

/// <summary>What one store operation asks for.</summary>
internal enum KvOpKind : byte
{
    Put = 1,
    Delete = 2,
}

/// <summary>How one store operation ended.</summary>
internal enum KvOutcome : byte
{
    /// <summary>Applied; <see cref="KvResult.Revision"/> is the new revision (0 for a delete of a missing key).</summary>
    Done = 0,

    /// <summary>Compare-and-set failed; <see cref="KvResult.Revision"/> is the key's actual mod revision.</summary>
    Conflict = 1,

    /// <summary>Not applied: the member is not the leader (safe to retry elsewhere).</summary>
    NotLeader = 2,

    /// <summary>The outcome is unknown (leadership was lost while replicating) or the operation failed.</summary>
    Failed = 3,
}

/// <summary>One put or delete, as carried in a log entry and in a forwarded request.</summary>
internal sealed class KvOp(KvOpKind kind, string key, byte[] value, long? expectedModRevision)
{
    public KvOpKind Kind { get; } = kind;

    public string Key { get; } = key;

    public byte[] Value { get; } = value;

    public long? ExpectedModRevision { get; } = expectedModRevision;
}

/// <summary>The outcome of one operation.</summary>
internal readonly record struct KvResult(KvOutcome Outcome, long Revision, string? Message = null);

/// <summary>
/// The binary form of a batch of operations (one Raft log entry): <c>version:u8, count:i32</c> then per operation
/// <c>kind:u8, expected:i64 (-1 = none), keyLength:i32, key (UTF-8), valueLength:i32, value</c>, little-endian.
/// </summary>
internal static class KvCommand
{
    public const byte Version = 1;

    public static byte[] Encode(IReadOnlyList<KvOp> ops)
    {
        int size = 5;
        foreach (KvOp op in ops)
        {
            size += 1 + 8 + 4 + StoreFileFormat.StrictUtf8.GetByteCount(op.Key) + 4 + op.Value.Length;
        }

        byte[] buffer = new byte[size];
        Span<byte> span = buffer;
        span[0] = Version;
        BinaryPrimitives.WriteInt32LittleEndian(span[1..], ops.Count);
        int offset = 5;
        foreach (KvOp op in ops)
        {
            span[offset] = (byte)op.Kind;
            BinaryPrimitives.WriteInt64LittleEndian(span[(offset + 1)..], op.ExpectedModRevision ?? -1);
            int keyLength = StoreFileFormat.StrictUtf8.GetBytes(op.Key, span[(offset + 13)..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[(offset + 9)..], keyLength);
            offset += 13 + keyLength;
            BinaryPrimitives.WriteInt32LittleEndian(span[offset..], op.Value.Length);
            op.Value.CopyTo(span[(offset + 4)..]);
            offset += 4 + op.Value.Length;
        }

        return buffer;
    }

    public static List<KvOp> Decode(ReadOnlySequence<byte> payload)
    {
        ReadOnlySpan<byte> span = payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray();
        return Decode(span);
    }

    public static List<KvOp> Decode(ReadOnlySpan<byte> span)
    {
        if (span.Length < 5 || span[0] != Version)
        {
            throw new InvalidDataException($"Not a WarpGrid store command (version {(span.Length > 0 ? span[0] : -1)}, length {span.Length}).");
        }

        int count = BinaryPrimitives.ReadInt32LittleEndian(span[1..]);
        if (count < 0 || count > span.Length)
        {
            throw new InvalidDataException($"A store command claims {count} operations in {span.Length} bytes.");
        }

        var ops = new List<KvOp>(count);
        int offset = 5;
        for (int i = 0; i < count; i++)
        {
            var kind = (KvOpKind)span[offset];
            long expected = BinaryPrimitives.ReadInt64LittleEndian(span[(offset + 1)..]);
            int keyLength = BinaryPrimitives.ReadInt32LittleEndian(span[(offset + 9)..]);
            string key = StoreFileFormat.StrictUtf8.GetString(span.Slice(offset + 13, keyLength));
            offset += 13 + keyLength;
            int valueLength = BinaryPrimitives.ReadInt32LittleEndian(span[offset..]);
            byte[] value = span.Slice(offset + 4, valueLength).ToArray();
            offset += 4 + valueLength;
            if (kind is not (KvOpKind.Put or KvOpKind.Delete))
            {
                throw new InvalidDataException($"Unknown store operation kind {(byte)kind}.");
            }

            ops.Add(new KvOp(kind, key, value, expected < 0 ? null : expected));
        }

        return ops;
    }

    public static byte[] EncodeResults(IReadOnlyList<KvResult> results)
    {
        var writer = new ArrayBufferWriter<byte>(4 + (results.Count * 9));
        Span<byte> head = writer.GetSpan(4);
        BinaryPrimitives.WriteInt32LittleEndian(head, results.Count);
        writer.Advance(4);
        foreach (KvResult result in results)
        {
            byte[] message = result.Message is null ? [] : System.Text.Encoding.UTF8.GetBytes(result.Message);
            Span<byte> span = writer.GetSpan(13 + message.Length);
            span[0] = (byte)result.Outcome;
            BinaryPrimitives.WriteInt64LittleEndian(span[1..], result.Revision);
            BinaryPrimitives.WriteInt32LittleEndian(span[9..], message.Length);
            message.CopyTo(span[13..]);
            writer.Advance(13 + message.Length);
        }

        return writer.WrittenSpan.ToArray();
    }

    public static KvResult[] DecodeResults(ReadOnlySpan<byte> span)
    {
        int count = BinaryPrimitives.ReadInt32LittleEndian(span);
        var results = new KvResult[count];
        int offset = 4;
        for (int i = 0; i < count; i++)
        {
            var outcome = (KvOutcome)span[offset];
            long revision = BinaryPrimitives.ReadInt64LittleEndian(span[(offset + 1)..]);
            int messageLength = BinaryPrimitives.ReadInt32LittleEndian(span[(offset + 9)..]);
            string? message = messageLength == 0 ? null : System.Text.Encoding.UTF8.GetString(span.Slice(offset + 13, messageLength));
            offset += 13 + messageLength;
            results[i] = new KvResult(outcome, revision, message);
        }

        return results;
    }
}
