using System.Buffers.Binary;
using WarpGrid.Core.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Core.Tests.Storage;

public sealed class FileClusterStoreRecoveryTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum TailDamage
    {
        RandomGarbage,
        Zeros,
        PartialFrameHeader,
        CopyOfFirstHalfOfAFrame,
        HugeLengthField,
    }

    [Theory]
    [InlineData(TailDamage.RandomGarbage)]
    [InlineData(TailDamage.Zeros)]
    [InlineData(TailDamage.PartialFrameHeader)]
    [InlineData(TailDamage.CopyOfFirstHalfOfAFrame)]
    [InlineData(TailDamage.HugeLengthField)]
    public async Task TornTail_IsTruncated_AndEveryEarlierWriteIsKept(TailDamage damage)
    {
        await WriteAsync(20);
        long cleanLength = new FileInfo(_dir.LogFile).Length;
        byte[] tail = damage switch
        {
            TailDamage.RandomGarbage => RandomBytes(37, seed: 7),
            TailDamage.Zeros => new byte[4096],
            TailDamage.PartialFrameHeader => [0x30, 0x00, 0x00],
            TailDamage.CopyOfFirstHalfOfAFrame => FirstHalfOfLastFrame(),
            TailDamage.HugeLengthField => [0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            _ => throw new ArgumentOutOfRangeException(nameof(damage)),
        };
        await using (var append = new FileStream(_dir.LogFile, FileMode.Append))
        {
            append.Write(tail);
        }

        var logger = new RecordingLogger<FileClusterStore>();
        await using (var store = new FileClusterStore(_dir.Path, logger))
        {
            await AssertHasAsync(store, 20);
            Assert.Equal(cleanLength, new FileInfo(_dir.LogFile).Length); // the tail was cut off
            var warning = Assert.Single(logger.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
            Assert.Contains(_dir.LogFile, warning.Message, StringComparison.Ordinal);
            Assert.Contains($"offset {cleanLength}", warning.Message, StringComparison.Ordinal);
            Assert.Equal(21, await store.PutAsync("after", Bytes("recovery")));
        }

        await using var reopened = new FileClusterStore(_dir.Path);
        await AssertHasAsync(reopened, 20);
        Assert.Equal("recovery", Text(await reopened.GetAsync("after")));
    }

    [Fact]
    public async Task TornLastFrame_LosesOnlyTheUnfinishedWrite()
    {
        await WriteAsync(10);
        (long offset, int length) = Frames(_dir.LogFile)[^1];
        await using (var file = new FileStream(_dir.LogFile, FileMode.Open))
        {
            file.SetLength(offset + length - 3);
        }

        await using var store = new FileClusterStore(_dir.Path);

        Assert.Equal(9, store.Revision);
        await AssertHasAsync(store, 9);
        Assert.Null(await store.GetAsync("k/0009"));
        Assert.Equal(offset, new FileInfo(_dir.LogFile).Length);
    }

    [Fact]
    public async Task BadChecksumOnLastFrame_IsTreatedAsTornTail()
    {
        await WriteAsync(10);
        (long offset, int length) = Frames(_dir.LogFile)[^1];
        FlipByte(_dir.LogFile, offset + length - 1);

        await using var store = new FileClusterStore(_dir.Path);

        Assert.Equal(9, store.Revision);
        await AssertHasAsync(store, 9);
    }

    [Fact]
    public async Task CorruptionInTheMiddle_RefusesToOpen_NamingFileAndOffset()
    {
        await WriteAsync(10);
        (long offset, int length) = Frames(_dir.LogFile)[3];
        FlipByte(_dir.LogFile, offset + (length / 2));

        var ex = Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));

        Assert.Equal(_dir.LogFile, ex.FilePath);
        Assert.Equal(offset, ex.Offset);
        Assert.Contains(_dir.LogFile, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"offset {offset}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("checksum", ex.Message, StringComparison.Ordinal);

        // Refusing must not have released anything half-way: the directory can be opened once repaired.
        FlipByte(_dir.LogFile, offset + (length / 2));
        await using var store = new FileClusterStore(_dir.Path);
        await AssertHasAsync(store, 10);
    }

    [Fact]
    public async Task CorruptLengthFieldInTheMiddle_RefusesToOpen()
    {
        await WriteAsync(10);
        long offset = Frames(_dir.LogFile)[2].Offset;
        await using (var file = new FileStream(_dir.LogFile, FileMode.Open))
        {
            file.Position = offset;
            file.Write([0xFF, 0xFF, 0xFF, 0x00]); // claims ~16 MiB, running past the end of the file
        }

        var ex = Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));

        Assert.Equal(offset, ex.Offset);
    }

    [Fact]
    public async Task ValidRecordOutOfSequence_RefusesToOpen()
    {
        await WriteAsync(5);
        List<(long Offset, int Length)> frames = Frames(_dir.LogFile);
        byte[] bytes = await File.ReadAllBytesAsync(_dir.LogFile);
        byte[] duplicate = bytes.AsSpan((int)frames[1].Offset, frames[1].Length).ToArray();
        await using (var append = new FileStream(_dir.LogFile, FileMode.Append))
        {
            append.Write(duplicate); // a complete, checksummed copy of revision 2 cannot come from a torn write
        }

        var ex = Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));

        Assert.Equal(bytes.Length, ex.Offset);
        Assert.Contains("revision 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NotAStoreLog_RefusesToOpen()
    {
        await File.WriteAllTextAsync(_dir.LogFile, "this is not a WarpGrid log at all");

        var ex = Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));

        Assert.Equal(0, ex.Offset);
    }

    [Fact]
    public async Task FailedOpen_ReleasesTheDirectoryLock()
    {
        await WriteAsync(3);
        FlipByte(_dir.LogFile, Frames(_dir.LogFile)[0].Offset + 12);
        Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));

        FlipByte(_dir.LogFile, Frames(_dir.LogFile)[0].Offset + 12);
        await using var store = new FileClusterStore(_dir.Path); // not "in use by another process"
        Assert.Equal(3, store.Revision);
    }

    [Fact]
    public async Task Compaction_WritesSnapshot_EmptiesLog_AndReopenRestoresEverything()
    {
        var options = new FileClusterStoreOptions { CompactionThresholdBytes = 4096 };
        await using (var store = new FileClusterStore(_dir.Path, options))
        {
            for (int round = 0; round < 20; round++)
            {
                for (int key = 0; key < 10; key++)
                {
                    await store.PutAsync($"k/{key}", Bytes($"round-{round}-{new string('x', 40)}"));
                }
            }

            await store.DeleteAsync("k/9");
            Assert.True(store.CompactionCount > 0);
            Assert.True(File.Exists(_dir.SnapshotFile));
            Assert.True(new FileInfo(_dir.LogFile).Length < 4096 + 1024);
        }

        await using var reopened = new FileClusterStore(_dir.Path, options);
        Assert.Equal(201, reopened.Revision);
        IReadOnlyList<StoreEntry> entries = await reopened.ListAsync("k/");
        Assert.Equal(9, entries.Count);
        for (int key = 0; key < 9; key++)
        {
            StoreEntry entry = entries[key];
            Assert.StartsWith("round-19-", Text(entry), StringComparison.Ordinal);
            Assert.Equal(key + 1, entry.CreateRevision);
            Assert.Equal(190 + key + 1, entry.ModRevision);
        }

        Assert.Equal(202, await reopened.PutAsync("k/new", Bytes("n")));
    }

    [Fact]
    public async Task CompactAsync_ThenReopen_SnapshotOnly()
    {
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await WriteAsync(store, 50);
            await store.DeleteAsync("k/0000");
            await store.CompactAsync();
            Assert.Equal(8, new FileInfo(_dir.LogFile).Length); // header only
        }

        await using var reopened = new FileClusterStore(_dir.Path);
        Assert.Equal(51, reopened.Revision);
        Assert.Null(await reopened.GetAsync("k/0000"));
        Assert.Equal(49, (await reopened.ListAsync("k/")).Count);
        Assert.Equal("value-49", Text(await reopened.GetAsync("k/0049")));
    }

    [Fact]
    public async Task CrashBetweenSnapshotRenameAndLogReset_ReplayIsIdempotent()
    {
        // Build some history, including updates and deletes, then keep a copy of the full log.
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await WriteAsync(store, 30);
            await store.PutAsync("k/0001", Bytes("updated"));
            await store.DeleteAsync("k/0002");
            await store.DeleteAsync("k/0003");
            await store.PutAsync("k/0003", Bytes("recreated"));
        }

        byte[] fullLog = await File.ReadAllBytesAsync(_dir.LogFile);

        // Compact: the snapshot (revision 34) is renamed into place and the log reset.
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await store.CompactAsync();
        }

        // Simulate a crash after the rename but before the reset: the old log is still there next to the snapshot.
        await File.WriteAllBytesAsync(_dir.LogFile, fullLog);

        await using (var store = new FileClusterStore(_dir.Path))
        {
            Assert.Equal(34, store.Revision);
            await AssertCompactionScenarioAsync(store);
            Assert.Equal(35, await store.PutAsync("k/0004", Bytes("after-crash"))); // appended after the stale records
        }

        await using var reopened = new FileClusterStore(_dir.Path);
        Assert.Equal(35, reopened.Revision);
        await AssertCompactionScenarioAsync(reopened);
        Assert.Equal("after-crash", Text(await reopened.GetAsync("k/0004")));
    }

    [Fact]
    public async Task CrashWhileWritingSnapshot_LeftoverTempFileIsIgnored()
    {
        await WriteAsync(10);
        string temp = Path.Combine(_dir.Path, "snapshot.tmp");
        await File.WriteAllBytesAsync(temp, RandomBytes(100, seed: 1));

        await using var store = new FileClusterStore(_dir.Path);

        await AssertHasAsync(store, 10);
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public async Task CorruptSnapshot_RefusesToOpen()
    {
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await WriteAsync(store, 10);
            await store.CompactAsync();
        }

        FlipByte(_dir.SnapshotFile, 40);

        var ex = Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));
        Assert.Equal(_dir.SnapshotFile, ex.FilePath);
    }

    [Fact]
    public async Task LogStartingAfterTheSnapshot_RefusesToOpen()
    {
        // Losing the snapshot leaves a log that starts at a revision nobody can account for.
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await WriteAsync(store, 10);
            await store.CompactAsync();
            await store.PutAsync("later", Bytes("x"));
        }

        File.Delete(_dir.SnapshotFile);

        var ex = Assert.Throws<StoreCorruptedException>(() => new FileClusterStore(_dir.Path));
        Assert.Contains("revision 11", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EmptyOrHeaderlessLogFile_IsRecreated()
    {
        await File.WriteAllBytesAsync(_dir.LogFile, [0x57, 0x47]);

        await using var store = new FileClusterStore(_dir.Path);

        Assert.Equal(0, store.Revision);
        Assert.Equal(1, await store.PutAsync("k", Bytes("v")));
    }

    [Fact]
    public async Task Checksum_HardwareAndSoftwarePathsAgree()
    {
        byte[] check = "123456789"u8.ToArray();
        Assert.Equal(0xE3069283u, Crc32C.Compute(check));
        Assert.Equal(0xE3069283u, Crc32C.Finish(Crc32C.UpdateSoftware(Crc32C.Initial, check)));

        byte[] data = RandomBytes(10_007, seed: 3);
        for (int length = 0; length < 64; length++)
        {
            Assert.Equal(Crc32C.Update(Crc32C.Initial, data.AsSpan(0, length)), Crc32C.UpdateSoftware(Crc32C.Initial, data.AsSpan(0, length)));
        }

        uint split = Crc32C.Update(Crc32C.Update(Crc32C.Initial, data.AsSpan(0, 5003)), data.AsSpan(5003));
        Assert.Equal(Crc32C.Compute(data), Crc32C.Finish(split));
        Assert.Equal(Crc32C.Compute(data), Crc32C.Finish(Crc32C.UpdateSoftware(Crc32C.Initial, data)));
        await Task.CompletedTask;
    }

    private static async Task AssertCompactionScenarioAsync(FileClusterStore store)
    {
        Assert.Equal("updated", Text(await store.GetAsync("k/0001")));
        Assert.Equal(31, (await store.GetAsync("k/0001"))!.ModRevision);
        Assert.Null(await store.GetAsync("k/0002"));
        StoreEntry? recreated = await store.GetAsync("k/0003");
        Assert.Equal(("recreated", 34L, 34L), (Text(recreated), recreated!.ModRevision, recreated.CreateRevision));
        Assert.Equal(29, (await store.ListAsync("k/")).Count);
    }

    private async Task WriteAsync(int count)
    {
        await using var store = new FileClusterStore(_dir.Path);
        await WriteAsync(store, count);
    }

    private static Task WriteAsync(FileClusterStore store, int count) => PutSequentiallyAsync(store, count);

    private static async Task AssertHasAsync(FileClusterStore store, int count)
    {
        IReadOnlyList<StoreEntry> entries = await store.ListAsync("k/");
        Assert.Equal(count, entries.Count);
        for (int i = 0; i < count; i++)
        {
            Assert.Equal($"k/{i:D4}", entries[i].Key);
            Assert.Equal($"value-{i}", Text(entries[i]));
            Assert.Equal(i + 1, entries[i].ModRevision);
        }
    }

    private byte[] FirstHalfOfLastFrame()
    {
        (long offset, int length) = Frames(_dir.LogFile)[^1];
        byte[] bytes = File.ReadAllBytes(_dir.LogFile);
        byte[] half = bytes.AsSpan((int)offset, length / 2).ToArray();

        // Make it look like the next revision so only its incompleteness gives it away.
        BinaryPrimitives.WriteInt64LittleEndian(half.AsSpan(9), 21);
        return half;
    }

    private static void FlipByte(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open);
        file.Position = offset;
        int value = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(value ^ 0x5A));
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        byte[] bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
