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
        long begin = 0;
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

                // Compaction runs after a checkpoint is durable; the begin address it reached is made durable by the
                // next checkpoint, which captures the begin address when it starts.
                begin = store.BeginAddress;
                await store.CheckpointAsync(new CheckpointCookie(round + 1, round + 1), CancellationToken.None);
            }

            Assert.True(store.CompactedUntil > 0, "the log was never compacted");
            Assert.True(begin > 0, "no checkpoint made a compaction durable");
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

    [Fact]
    public async Task BackgroundCheckpoint_LetsWritesGoOnWhileItIsWritten_AndRecoversExactlyTheStateAtItsCookie()
    {
        string directory = Path.Combine(_root.Path, "background");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cookie = new CheckpointCookie(RaftIndex: 4242, Revision: Count);
        using (FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance, memoryBits: 16, pageBits: 12))
        {
            // The checkpoint is held in progress until the test releases it: a checkpoint on the write path would never
            // let TryBeginCheckpointAsync return (the wait below fails instead of hanging).
            store.BackgroundCheckpointGate = _ => release.Task;
            for (int i = 0; i < Count; i++)
            {
                store.Upsert(Key(i), new StoredValue(Value(i, 0), i + 1, i + 1));
            }

            // Another thread stays inside FASTER's epoch (a reader in the middle of an operation): FASTER cannot move to
            // the next version until it leaves, so the checkpoint may not return to the applier before then; any write
            // the applier made meanwhile would be in the checkpoint although it comes after the cookie.
            using var entered = new ManualResetEventSlim();
            using var leave = new ManualResetEventSlim();
            var holder = new Thread(() =>
            {
                using (store.EnterEpochForTest())
                {
                    entered.Set();
                    leave.Wait();
                }
            });
            holder.Start();
            entered.Wait();
            Task<Task?> begin = store.TryBeginCheckpointAsync(cookie, CancellationToken.None).AsTask();
            await PollAsync(() => store.VersionSwitchWaits >= 20, "the applier waiting for the checkpoint's version switch");
            Assert.False(begin.IsCompleted, "the checkpoint returned to the applier before FASTER switched to the next version");
            leave.Set();
            holder.Join();
            Task? completion = await begin.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotNull(completion);
            Assert.True(store.CheckpointInProgress);

            // One checkpoint at a time: a second one is not started while the first is written.
            Assert.Null(await store.TryBeginCheckpointAsync(new CheckpointCookie(4243, Count), CancellationToken.None));

            // The writer goes on meanwhile: updates, new keys and deletes after the cookie's boundary, read back at once.
            for (int i = 0; i < Count; i += 2)
            {
                store.Upsert(Key(i), new StoredValue(Value(i, 1), Count + i + 1, i + 1));
            }

            for (int i = 0; i < 100; i++)
            {
                store.Upsert($"after/{i}", new StoredValue([1], 2 * Count + i, 2 * Count + i));
            }

            store.Delete(Key(1));
            store.Delete(Key(Count - 1));
            Assert.Equal(Value(0, 1), (await store.ReadAsync(Key(0)))!.Value);
            Assert.Null(await store.ReadAsync(Key(1)));
            Assert.True(store.CheckpointInProgress);
            Assert.Equal(default, store.LastCheckpoint);

            release.SetResult();
            await completion.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.False(store.CheckpointInProgress);
            Assert.Equal(cookie, store.LastCheckpoint);
        }

        // Closed without another checkpoint: the recovered state is the state at the cookie, none of the later writes.
        using (FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance, memoryBits: 16, pageBits: 12))
        {
            Assert.Null(store.RecoveryProblem);
            Assert.Equal(cookie, store.Recovered);
            Assert.Equal(Count, store.ReadAll().Count);
            Assert.Null(await store.ReadAsync("after/0"));
            Assert.Null(await store.ReadAsync("after/99"));
            await AssertValuesAsync(store, generation: 0);
        }
    }

    [Fact]
    public async Task FailedBackgroundCheckpoint_FaultsItsTask_AndIsNotReportedAsTaken()
    {
        string directory = Path.Combine(_root.Path, "failing");
        using FasterStateStore store = FasterStateStore.Open(directory, NullLogger.Instance);
        store.Upsert("a", new StoredValue([1], 1, 1));
        store.BackgroundCheckpointGate = _ => Task.FromException(new IOException("disk full (test)"));
        Task? failing = await store.TryBeginCheckpointAsync(new CheckpointCookie(1, 1), CancellationToken.None);
        Assert.NotNull(failing);
        IOException error = await Assert.ThrowsAsync<IOException>(() => failing);
        Assert.Equal("disk full (test)", error.Message);
        Assert.Equal(default, store.LastCheckpoint);
    }

    private static async Task PollAsync(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(10);
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
