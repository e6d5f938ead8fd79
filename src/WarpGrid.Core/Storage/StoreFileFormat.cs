using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace WarpGrid.Core.Storage;

/// <summary>One change recorded in the write-ahead log.</summary>
internal readonly record struct LogOperation(StoreEventKind Kind, long Revision, long CreateRevision, string Key, byte[] Value);

/// <summary>
/// The on-disk formats of <see cref="FileClusterStore"/>. All integers are little-endian.
/// </summary>
/// <remarks>
/// <para>
/// <b>Log</b> (<c>wal.log</c>): an 8-byte file header (<c>"WGWL"</c>, format version) followed by frames. A frame is
/// one group commit: <c>u32 payloadLength, u32 crc32c(payloadLength bytes + payload), payload</c>, where the payload is
/// one or more operations <c>u8 kind (1 put, 2 delete), i64 revision, i64 createRevision, i32 keyLength, key (UTF-8),
/// i32 valueLength, value</c>. Revisions inside the log are consecutive. A frame is written and fsynced as a unit and
/// the next frame is only written after that fsync has returned, so only the last frame can ever be torn by a crash.
/// </para>
/// <para>
/// <b>Snapshot</b> (<c>snapshot</c>): <c>"WGSS"</c>, format version, i64 revision, i64 entry count, then per entry
/// <c>i32 keyLength, key, i32 valueLength, value, i64 modRevision, i64 createRevision</c>, then a trailing
/// <c>u32 crc32c</c> of everything before it. It is written to a temporary file, fsynced and renamed into place.
/// </para>
/// </remarks>
internal static class StoreFileFormat
{
    public const string LogFileName = "wal.log";
    public const string SnapshotFileName = "snapshot";
    public const string SnapshotTempFileName = "snapshot.tmp";
    public const string LockFileName = "LOCK";

    public const int FileHeaderSize = 8;
    public const int FrameHeaderSize = 8;
    public const uint LogMagic = 0x4C574757; // "WGWL"
    public const uint SnapshotMagic = 0x53534757; // "WGSS"
    public const uint FormatVersion = 1;

    public const byte KindPut = 1;
    public const byte KindDelete = 2;

    /// <summary>kind + revision + createRevision + keyLength.</summary>
    public const int OperationFixedPrefix = 1 + 8 + 8 + 4;

    /// <summary>The smallest possible operation: a one-byte key and an empty value.</summary>
    public const int MinOperationSize = OperationFixedPrefix + 1 + 4;

    /// <summary>A sanity bound on frame payloads; the writer keeps frames far below it.</summary>
    public const int MaxFramePayload = 256 * 1024 * 1024;

    public static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static int OperationSize(int keyBytes, int valueBytes) => OperationFixedPrefix + keyBytes + 4 + valueBytes;

    public static void WriteFileHeader(Span<byte> destination, uint magic)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], FormatVersion);
    }

    public static uint FrameChecksum(uint payloadLength, ReadOnlySpan<byte> payload)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, payloadLength);
        return Crc32C.Finish(Crc32C.Update(Crc32C.Update(Crc32C.Initial, length), payload));
    }

    /// <summary>Decodes the operations of a frame whose checksum has already been verified.</summary>
    /// <returns>null on success, otherwise what is malformed.</returns>
    public static string? TryDecodeFrame(ReadOnlySpan<byte> payload, List<LogOperation> operations)
    {
        while (!payload.IsEmpty)
        {
            if (payload.Length < MinOperationSize)
            {
                return "truncated operation inside a frame";
            }

            byte kind = payload[0];
            if (kind is not (KindPut or KindDelete))
            {
                return $"unknown operation kind {kind}";
            }

            long revision = BinaryPrimitives.ReadInt64LittleEndian(payload[1..]);
            long createRevision = BinaryPrimitives.ReadInt64LittleEndian(payload[9..]);
            int keyLength = BinaryPrimitives.ReadInt32LittleEndian(payload[17..]);
            if (keyLength <= 0 || keyLength > FileClusterStore.MaxKeyBytes || payload.Length < OperationFixedPrefix + keyLength + 4)
            {
                return $"invalid key length {keyLength}";
            }

            string key;
            try
            {
                key = StrictUtf8.GetString(payload.Slice(OperationFixedPrefix, keyLength));
            }
            catch (DecoderFallbackException)
            {
                return "key is not valid UTF-8";
            }

            int valueOffset = OperationFixedPrefix + keyLength + 4;
            int valueLength = BinaryPrimitives.ReadInt32LittleEndian(payload[(valueOffset - 4)..]);
            if (valueLength < 0 || valueLength > FileClusterStore.MaxValueBytes || payload.Length - valueOffset < valueLength
                || (kind == KindDelete && valueLength != 0))
            {
                return $"invalid value length {valueLength}";
            }

            if (revision <= 0 || (kind == KindPut && (createRevision <= 0 || createRevision > revision)))
            {
                return $"invalid revisions {revision}/{createRevision}";
            }

            operations.Add(new LogOperation(
                kind == KindPut ? StoreEventKind.Put : StoreEventKind.Delete,
                revision,
                createRevision,
                key,
                valueLength == 0 ? [] : payload.Slice(valueOffset, valueLength).ToArray()));
            payload = payload[(valueOffset + valueLength)..];
        }

        return null;
    }

    /// <summary>
    /// Looks for a well-formed frame (plausible header, checksum matching, first revision at least
    /// <paramref name="minimumRevision"/>) starting anywhere in [<paramref name="start"/>, <paramref name="fileLength"/>).
    /// Used to tell a torn tail (nothing valid follows) from damage in the middle of the log (valid frames follow).
    /// </summary>
    public static bool ContainsValidFrame(SafeFileHandle file, long start, long fileLength, long minimumRevision)
    {
        const int Probe = FrameHeaderSize + 1 + 8; // header, kind, revision
        const int WindowSize = 1024 * 1024;
        byte[] window = ArrayPool<byte>.Shared.Rent(WindowSize);
        try
        {
            long windowStart = start;
            while (windowStart <= fileLength - Probe)
            {
                int filled = ReadAt(file, window.AsSpan(0, (int)Math.Min(WindowSize, fileLength - windowStart)), windowStart);
                int examined = 0;
                for (int i = 0; i + Probe <= filled; i++, examined++)
                {
                    ReadOnlySpan<byte> probe = window.AsSpan(i, Probe);
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(probe);
                    if (length < MinOperationSize || length > MaxFramePayload || windowStart + i + FrameHeaderSize + length > fileLength)
                    {
                        continue;
                    }

                    byte kind = probe[FrameHeaderSize];
                    long revision = BinaryPrimitives.ReadInt64LittleEndian(probe[(FrameHeaderSize + 1)..]);
                    if (kind is not (KindPut or KindDelete) || revision < minimumRevision || revision - minimumRevision > (1L << 40))
                    {
                        continue;
                    }

                    if (FrameChecksumMatches(file, windowStart + i, length, BinaryPrimitives.ReadUInt32LittleEndian(probe[4..])))
                    {
                        return true;
                    }
                }

                if (examined == 0)
                {
                    break;
                }

                windowStart += examined;
            }

            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(window);
        }
    }

    private static bool FrameChecksumMatches(SafeFileHandle file, long frameOffset, uint length, uint expected)
    {
        byte[] payload = ArrayPool<byte>.Shared.Rent((int)length);
        try
        {
            int read = ReadAt(file, payload.AsSpan(0, (int)length), frameOffset + FrameHeaderSize);
            return read == length && FrameChecksum(length, payload.AsSpan(0, (int)length)) == expected;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    private static int ReadAt(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = RandomAccess.Read(file, buffer[total..], offset + total);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }
}

/// <summary>A growable byte buffer for building one log frame; reused across batches.</summary>
internal sealed class FrameBuffer
{
    private const int RetainLimit = 4 * 1024 * 1024;
    private byte[] _buffer = new byte[64 * 1024];
    private int _length = StoreFileFormat.FrameHeaderSize;

    public int OperationCount { get; private set; }

    /// <summary>Bytes in the frame so far, header included.</summary>
    public int Length => _length;

    public void Reset()
    {
        if (_buffer.Length > RetainLimit)
        {
            _buffer = new byte[64 * 1024];
        }

        _length = StoreFileFormat.FrameHeaderSize;
        OperationCount = 0;
    }

    public void Append(StoreEventKind kind, long revision, long createRevision, string key, ReadOnlySpan<byte> value)
    {
        int keyBytes = StoreFileFormat.StrictUtf8.GetByteCount(key);
        int size = StoreFileFormat.OperationSize(keyBytes, value.Length);
        EnsureCapacity(size);
        Span<byte> span = _buffer.AsSpan(_length, size);
        span[0] = kind == StoreEventKind.Put ? StoreFileFormat.KindPut : StoreFileFormat.KindDelete;
        BinaryPrimitives.WriteInt64LittleEndian(span[1..], revision);
        BinaryPrimitives.WriteInt64LittleEndian(span[9..], createRevision);
        BinaryPrimitives.WriteInt32LittleEndian(span[17..], keyBytes);
        StoreFileFormat.StrictUtf8.GetBytes(key, span.Slice(StoreFileFormat.OperationFixedPrefix, keyBytes));
        BinaryPrimitives.WriteInt32LittleEndian(span[(StoreFileFormat.OperationFixedPrefix + keyBytes)..], value.Length);
        value.CopyTo(span[(StoreFileFormat.OperationFixedPrefix + keyBytes + 4)..]);
        _length += size;
        OperationCount++;
    }

    /// <summary>Fills in the frame header and returns the complete frame.</summary>
    public ReadOnlySpan<byte> Seal()
    {
        uint payloadLength = (uint)(_length - StoreFileFormat.FrameHeaderSize);
        Span<byte> frame = _buffer.AsSpan(0, _length);
        BinaryPrimitives.WriteUInt32LittleEndian(frame, payloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], StoreFileFormat.FrameChecksum(payloadLength, frame[StoreFileFormat.FrameHeaderSize..]));
        return frame;
    }

    private void EnsureCapacity(int additional)
    {
        long required = (long)_length + additional;
        if (required <= _buffer.Length)
        {
            return;
        }

        long newSize = Math.Max(required, (long)_buffer.Length * 2);
        Array.Resize(ref _buffer, (int)Math.Min(newSize, Array.MaxLength));
    }
}

/// <summary>Writes a stream while keeping a running CRC-32C of everything written.</summary>
internal sealed class ChecksummedWriter(Stream stream)
{
    private uint _state = Crc32C.Initial;

    public void Write(ReadOnlySpan<byte> data)
    {
        _state = Crc32C.Update(_state, data);
        stream.Write(data);
    }

    public void WriteUInt32(uint value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, value);
        Write(buffer);
    }

    public void WriteInt32(int value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(buffer, value);
        Write(buffer);
    }

    public void WriteInt64(long value)
    {
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(buffer, value);
        Write(buffer);
    }

    /// <summary>Appends the checksum of everything written so far (not itself included in any checksum).</summary>
    public void WriteChecksum()
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, Crc32C.Finish(_state));
        stream.Write(buffer);
    }
}

/// <summary>Reads a stream while keeping a running CRC-32C; a short read is reported as corruption of <c>path</c>.</summary>
internal sealed class ChecksummedReader(Stream stream, string path)
{
    private uint _state = Crc32C.Initial;

    public long Position { get; private set; }

    public void ReadExactly(Span<byte> buffer)
    {
        int read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (read < buffer.Length)
        {
            throw new StoreCorruptedException(path, Position + read, "unexpected end of file");
        }

        _state = Crc32C.Update(_state, buffer);
        Position += buffer.Length;
    }

    public uint ReadUInt32()
    {
        Span<byte> buffer = stackalloc byte[4];
        ReadExactly(buffer);
        return BinaryPrimitives.ReadUInt32LittleEndian(buffer);
    }

    public int ReadInt32()
    {
        Span<byte> buffer = stackalloc byte[4];
        ReadExactly(buffer);
        return BinaryPrimitives.ReadInt32LittleEndian(buffer);
    }

    public long ReadInt64()
    {
        Span<byte> buffer = stackalloc byte[8];
        ReadExactly(buffer);
        return BinaryPrimitives.ReadInt64LittleEndian(buffer);
    }

    /// <summary>Reads the trailing checksum and compares it with everything read before it.</summary>
    public bool ReadAndVerifyChecksum()
    {
        uint expected = Crc32C.Finish(_state);
        Span<byte> buffer = stackalloc byte[4];
        int read = stream.ReadAtLeast(buffer, 4, throwOnEndOfStream: false);
        if (read < 4)
        {
            throw new StoreCorruptedException(path, Position + read, "unexpected end of file");
        }

        Position += 4;
        return BinaryPrimitives.ReadUInt32LittleEndian(buffer) == expected;
    }
}
