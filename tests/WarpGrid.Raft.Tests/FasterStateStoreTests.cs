using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Tests.Storage;

namespace WarpGrid.Raft.Tests;

/// <summary>The FASTER store under the state machine, with a log far larger than its in-memory part.</summary>
public sealed class FasterStateStoreTests : IDisposable
{
    private const int Count = 5000;
    private readonly TempDirectory _root = new();

    [Fact]
    public async Task RecordsEvictedToDisk_ReadBack_SurviveCheckpointRecovery_AndUpdatesAfterTheCheckpointAreUndone()
    {
        string directory = Path.Combine(_root.Path, "faster");

        // 64 KiB of records in memory (about 2,700): most of the 5,000 keys end up in the on-disk log and object log.
        using (FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance, memoryBits: 16, pageBits: 12))
        {
            for (int i = 0; i < Count; i++)
            {
                store.Upsert(Key(i), new StoredValue(Value(i, 0), i + 1, i + 1));
            }

            await AssertValuesAsync(store, generation: 0); // pending reads from disk complete
            await store.CheckpointAsync(new CheckpointCookie(RaftIndex: 777, Revision: Count), CancellationToken.None);

            // Written after the checkpoint: not durable, must not come back.
            store.Upsert(Key(1), new StoredValue(Value(1, 1), Count + 1, 2));
            store.Upsert("after/checkpoint", new StoredValue([1], Count + 2, Count + 2));
            store.Delete(Key(2));
        }

        using (FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance, memoryBits: 16, pageBits: 12))
        {
            Assert.Null(store.RecoveryProblem);
            Assert.Equal(new CheckpointCookie(777, Count), store.Recovered);
            List<(string Key, StoredValue Value)> all = store.ReadAll();
            Assert.Equal(Count, all.Count);
            Assert.Equal(Enumerable.Range(0, Count).Select(Key).Order(StringComparer.Ordinal), all.Select(p => p.Key).Order(StringComparer.Ordinal));
            Assert.Null(await store.ReadAsync("after/checkpoint"));
            await AssertValuesAsync(store, generation: 0);
            StoredValue?[] many = await store.ReadManyAsync([Key(0), "missing", Key(Count - 1)]);
            Assert.Equal(1, many[0]!.ModRevision);
            Assert.Null(many[1]);
            Assert.Equal(Count, many[2]!.CreateRevision);
        }
    }

    [Fact]
    public async Task RepeatedUpdates_CompactTheLog_AtCheckpoints_AndEveryLiveValueSurvivesRecovery()
    {
        const int Rounds = 8;
        string directory = Path.Combine(_root.Path, "compacted");
        const int keys = 3000; // 72 KB of records against 32 KB in memory: updates of records on disk append
        long begin;
        using (FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance, memoryBits: 15, pageBits: 12, compactAfterBytes: 64 * 1024))
        {
            // Each round rewrites every key; records that left the mutable region are copied, so the log grows.
            for (int round = 0; round < Rounds; round++)
            {
                for (int i = round; i < keys; i++) // keys deleted in earlier rounds stay deleted
                {
                    store.Upsert(Key(i), new StoredValue(Value(i, round), round + 1, 1));
                }

                store.Delete(Key(round)); // tombstones are compacted too
                await store.CheckpointAsync(new CheckpointCookie(round + 1, round + 1), CancellationToken.None);
            }

            Assert.True(store.CompactedUntil > 0, "the log was never compacted");
            begin = store.BeginAddress;
            Assert.True(begin > 0);
        }

        using (FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance, memoryBits: 15, pageBits: 12, compactAfterBytes: 64 * 1024))
        {
            Assert.Null(store.RecoveryProblem);
            Assert.Equal(new CheckpointCookie(Rounds, Rounds), store.Recovered);
            Assert.Equal(begin, store.BeginAddress);
            Assert.Equal(keys - Rounds, store.ReadAll().Count);
            for (int i = 0; i < keys; i++)
            {
                StoredValue? value = await store.ReadAsync(Key(i));
                if (i < Rounds)
                {
                    Assert.Null(value);
                }
                else
                {
                    Assert.NotNull(value);
                    Assert.Equal(Value(i, Rounds - 1), value.Value);
                    Assert.Equal(Rounds, value.ModRevision);
                }
            }
        }
    }

    private static string Key(int i) => $"deployments/app-{i:D5}";

    private static byte[] Value(int i, int generation) => Encoding.UTF8.GetBytes($"value {i} generation {generation} " + new string('x', i % 300));

    private static async Task AssertValuesAsync(FasterStateStore store, int generation)
    {
        for (int i = 0; i < Count; i++)
        {
            StoredValue? value = await store.ReadAsync(Key(i));
            Assert.NotNull(value);
            Assert.Equal(Value(i, generation), value.Value);
            Assert.Equal(i + 1, value.ModRevision);
            Assert.Equal(i + 1, value.CreateRevision);
        }
    }

    public void Dispose() => _root.Dispose();
}
